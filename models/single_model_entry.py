"""The file MLflow runs to build a single model's pyfunc ("models from code": nothing is pickled).

MLflow executes this file when it loads the model; it is not imported by the package.
"""

import mlflow

from crm_modes.models.single_model import SingleModel

mlflow.models.set_model(SingleModel())
