// The Python stack the benchmarks compare with, pinned once (one cached venv for all of them).
export const PYTHON_PINS = ['onnxruntime==1.32.0', 'numpy==2.4.6', 'pillow==13.0.0', 'fastapi==0.165.0', 'uvicorn==0.54.0'];
