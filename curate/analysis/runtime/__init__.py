"""Model runtimes: TFLite and TFJS graphs run by torch (``tflite_torch``, ``tfjs_torch`` over ``graph_torch``),
the OpenCV/torch runners of the shipped MediaPipe models (``runners``) and SSD decoding (``ssd``)."""
