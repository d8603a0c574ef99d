"""The file MLflow runs to build the advisor pyfunc ("models from code": nothing is pickled).

MLflow executes this file when it loads the model; it is not imported by the package.
"""

import mlflow

from crm_modes.models.advisor import AdvisorModel

mlflow.models.set_model(AdvisorModel())
