"""Concrete-ML-style entry points (compile_onnx_model, QuantizedModule, the deployment classes).
The torch and Brevitas exporters and the scikit-learn-style built-in models come next (issue 15)."""
from .deployment import FHEModelClient, FHEModelDev, FHEModelServer
from .onnx import FHECircuit, QuantizedModule, compile_onnx_model

__all__ = ["compile_onnx_model", "QuantizedModule", "FHECircuit", "FHEModelDev", "FHEModelClient", "FHEModelServer"]
