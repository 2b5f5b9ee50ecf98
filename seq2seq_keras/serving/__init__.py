"""From a model to TensorFlow Serving: the signature schema (``signatures``), the SavedModel export
(``export``), the servable check (``check``, with ``check_program`` and ``tf_serving_loader``, which run in a
fresh interpreter and load each other by path) and the REST/gRPC clients (``client``, NumPy only).

Importing this package imports neither TensorFlow nor Keras (the clients work without them)."""

from .._lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "RestClient": "client",
        "GrpcClient": "client",
        "ServingError": "client",
        "outputs_to_translations": "client",
        "export_model": "export",
        "check_servable": "check",
    },
)
