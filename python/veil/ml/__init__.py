"""Concrete-ML-style entry points: compile_onnx_model, QuantizedModule and the deployment classes
here; compile_torch_model and compile_brevitas_qat_model in veil.ml.torch; the scikit-learn-style
built-in models in veil.ml.sklearn (imported on demand: they need torch, scikit-learn, XGBoost)."""
from .deployment import FHEModelClient, FHEModelDev, FHEModelServer
from .onnx import FHECircuit, QuantizedModule, compile_onnx_model

__all__ = ["compile_onnx_model", "QuantizedModule", "FHECircuit", "FHEModelDev", "FHEModelClient", "FHEModelServer"]
