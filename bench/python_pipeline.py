# The Python pipeline bench:runner compares the runner with: what a user of the Python stack
# writes for the same job, sequentially. Pillow decode and resize (classification: shorter side
# to 256, bilinear, centre crop, /255, ImageNet normalisation; detection: letterbox to 640 with
# grey 114 padding, /255), NumPy CHW batches, onnxruntime with the same threads, NumPy softmax +
# top-5, or YOLO decoding + class-aware NMS at conf 0.25 / IoU 0.7. Prints one JSON line.
import json, os, resource, sys, time

import numpy as np
import onnxruntime as ort
from PIL import Image

task, model, folder, batch, threads = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
opts = ort.SessionOptions()
opts.intra_op_num_threads = threads
opts.inter_op_num_threads = 1
opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
session = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
name = session.get_inputs()[0].name
files = sorted(os.path.join(folder, f) for f in os.listdir(folder) if f.endswith(".jpg"))

MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32).reshape(3, 1, 1)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32).reshape(3, 1, 1)


def classify_input(path):
    img = Image.open(path).convert("RGB")
    w, h = img.size
    if w <= h:
        size = (256, int(256 * h / w))
    else:
        size = (int(256 * w / h), 256)
    img = img.resize(size, Image.BILINEAR)
    left, top = round((size[0] - 224) / 2), round((size[1] - 224) / 2)
    img = img.crop((left, top, left + 224, top + 224))
    x = np.asarray(img, dtype=np.float32).transpose(2, 0, 1) / np.float32(255)
    return (x - MEAN) / STD


def letterbox_input(path, size=640):
    img = Image.open(path).convert("RGB")
    w, h = img.size
    r = min(size / w, size / h)
    nw, nh = round(w * r), round(h * r)
    img = img.resize((nw, nh), Image.BILINEAR)
    canvas = Image.new("RGB", (size, size), (114, 114, 114))
    canvas.paste(img, ((size - nw) // 2, (size - nh) // 2))
    return np.asarray(canvas, dtype=np.float32).transpose(2, 0, 1) / np.float32(255)


def softmax_top5(logits):
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    p = e / e.sum(axis=1, keepdims=True)
    return np.argsort(-p, axis=1)[:, :5], p


def nms(boxes, scores, iou):
    order = scores.argsort()[::-1]
    keep = []
    while order.size:
        i = order[0]
        keep.append(i)
        xx1 = np.maximum(boxes[i, 0], boxes[order[1:], 0])
        yy1 = np.maximum(boxes[i, 1], boxes[order[1:], 1])
        xx2 = np.minimum(boxes[i, 2], boxes[order[1:], 2])
        yy2 = np.minimum(boxes[i, 3], boxes[order[1:], 3])
        inter = np.clip(xx2 - xx1, 0, None) * np.clip(yy2 - yy1, 0, None)
        area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        ratio = inter / (area[i] + area[order[1:]] - inter + 1e-9)
        order = order[1:][ratio <= iou]
    return keep


def decode_yolo(out, conf=0.25, iou=0.7, max_det=300):
    results = []
    for pred in out:  # [84, 8400]
        pred = pred.T
        scores = pred[:, 4:]
        cls = scores.argmax(axis=1)
        best = scores[np.arange(len(cls)), cls]
        m = best > conf
        xywh, cls, best = pred[m, :4], cls[m], best[m]
        boxes = np.concatenate([xywh[:, :2] - xywh[:, 2:] / 2, xywh[:, :2] + xywh[:, 2:] / 2], axis=1)
        offset = boxes + cls[:, None].astype(np.float32) * 7680
        keep = nms(offset, best, iou)[:max_det]
        results.append((boxes[keep], best[keep], cls[keep]))
    return results


prepare = classify_input if task == "image_classification" else letterbox_input
started = time.perf_counter()
objects = 0
for i in range(0, len(files), batch):
    x = np.stack([prepare(f) for f in files[i : i + batch]])
    out = session.run(None, {name: x})[0]
    if task == "image_classification":
        softmax_top5(out)
    else:
        objects += sum(len(b) for b, _, _ in decode_yolo(out))
seconds = time.perf_counter() - started
print(json.dumps({"images_per_second": len(files) / seconds, "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, "objects_per_image": objects / len(files)}))
