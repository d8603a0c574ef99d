"""The project's REST service: validated requests, health, readiness, version, hot reload.

It is built as an application factory (:mod:`~crm_modes.serve.rest.app`) with middleware at the
boundary (:mod:`~crm_modes.serve.rest.middleware`: body limit, catch-all), strict JSON
(:mod:`~crm_modes.serve.rest.strict_json`), request and answer models derived from the schema
(:mod:`~crm_modes.serve.rest.records`), and one router per concern
(:mod:`~crm_modes.serve.rest.routers`: scoring, memory, admin), with authorization as a dependency
(:mod:`~crm_modes.serve.rest.auth`).

The service is a trust boundary. Bodies above :attr:`Limits.max_body_bytes` get a 413 before
anything is parsed; JSON is parsed strictly (no ``NaN`` or ``Infinity``, no key twice in one
object, booleans are not numbers); error bodies carry at most a short excerpt of what was sent;
a facility-month sent twice in one request is refused, as the batch gate quarantines it;
anything unexpected is a 500 carrying only a request id, logged with its traceback under that id.
"""
