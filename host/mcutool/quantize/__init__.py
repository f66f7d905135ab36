"""Post-training int8 quantization of float .tflite models, with numpy only."""
