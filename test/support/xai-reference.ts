// Models for the explanation tests, built and exported to ONNX by PyTorch itself in the reference
// venv, with what pytorch-grad-cam computes on the same weights: a small ResNet-style CNN (residual
// blocks, BatchNorm folded by the exporter, global average pooling, a linear head and a softmax)
// and a small vision transformer with explicit attention (its attention probabilities captured for
// rollout). Everything is seeded: the same files and numbers on every run.
export const XAI_MODELS_SCRIPT = `
import json, sys, os
import numpy as np, torch, torch.nn as nn, cv2
from pytorch_grad_cam import GradCAM, HiResCAM, GradCAMPlusPlus, ScoreCAM, EigenCAM
import pytorch_grad_cam.eigen_cam as eigen_cam
from pytorch_grad_cam.utils.svd_on_activations import get_2d_projection_with_sign_correction
from pytorch_grad_cam.utils.image import scale_cam_image
cfg = json.load(open(sys.argv[1]))
out_dir = cfg['dir']
torch.manual_seed(0)

class Block(nn.Module):
    def __init__(s, cin, cout, stride):
        super().__init__()
        s.c1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False); s.b1 = nn.BatchNorm2d(cout)
        s.c2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False); s.b2 = nn.BatchNorm2d(cout)
        s.short = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)) if stride != 1 or cin != cout else nn.Identity()
    def forward(s, x):
        y = torch.relu(s.b1(s.c1(x)))
        y = s.b2(s.c2(y))
        return torch.relu(y + s.short(x))

class Net(nn.Module):
    def __init__(s, nc=5):
        super().__init__()
        s.stem = nn.Sequential(nn.Conv2d(3, 16, 3, 2, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU())
        s.l1 = Block(16, 16, 1); s.l2 = Block(16, 32, 2); s.l3 = Block(32, 48, 2)
        s.pool = nn.AdaptiveAvgPool2d(1); s.fc = nn.Linear(48, nc)
    def forward(s, x):
        x = s.l3(s.l2(s.l1(s.stem(x))))
        return torch.softmax(s.fc(torch.flatten(s.pool(x), 1)), 1)

cnn = Net().eval()
for mod in cnn.modules():
    if isinstance(mod, nn.BatchNorm2d):
        mod.running_mean.uniform_(-0.2, 0.2); mod.running_var.uniform_(0.5, 1.5); mod.weight.data.uniform_(0.5, 1.5); mod.bias.data.uniform_(-0.2, 0.2)
with torch.no_grad():
    cnn.fc.weight.mul_(8)
S = cfg['size']
torch.onnx.export(cnn, torch.zeros(1, 3, S, S), f'{out_dir}/cnn.onnx', input_names=['images'], output_names=['output0'],
                  dynamic_axes={'images': {0: 'batch'}, 'output0': {0: 'batch'}}, opset_version=17, dynamo=False)

# Smooth random images, so that maps have structure.
g = torch.Generator().manual_seed(1)
images = []
for k in range(cfg['images']):
    low = torch.rand(1, 3, 4, 4, generator=g)
    x = torch.nn.functional.interpolate(low, size=(S, S), mode='bilinear', align_corners=False) + 0.1 * torch.rand(1, 3, S, S, generator=g)
    images.append(x)

# ONNX tensor of each torch layer (BatchNorm is folded into the Conv before it by the exporter).
layers = {'/l3/Relu_1_output_0': cnn.l3, '/l2/Relu_1_output_0': cnn.l2, '/l3/c1/Conv_output_0': cnn.l3.b1}
eigen_cam.get_2d_projection = get_2d_projection_with_sign_correction
cams = {}
raw_max = {}
for method, cls in [('gradcam', GradCAM), ('hirescam', HiResCAM), ('gradcampp', GradCAMPlusPlus), ('scorecam', ScoreCAM), ('eigencam', EigenCAM)]:
    cams[method] = {}
    raw_max[method] = {}
    for name, layer in layers.items():
        cam = cls(model=cnn, target_layers=[layer])
        cams[method][name], raw_max[method][name] = [], []
        for x in images:
            cams[method][name].append(cam(input_tensor=x, targets=None)[0].astype(np.float64).reshape(-1).tolist())
            if method != 'scorecam':
                # The CAM before normalisation, from the activations and gradients of that call.
                acts = cam.activations_and_grads.activations[0].cpu().numpy()
                grads = cam.activations_and_grads.gradients[0].cpu().numpy() if cam.activations_and_grads.gradients else None
                raw = cam.get_cam_image(x, layer, None, acts, grads, False)
                raw_max[method][name].append(float(np.max(raw)))

# A small ViT with explicit attention.
class Attention(nn.Module):
    def __init__(s, d, h):
        super().__init__(); s.h = h; s.qkv = nn.Linear(d, 3 * d); s.proj = nn.Linear(d, d); s.last = None
    def forward(s, x):
        B, T, D = x.shape
        q, k, v = s.qkv(x).reshape(B, T, 3, s.h, D // s.h).permute(2, 0, 3, 1, 4)
        a = torch.softmax((q @ k.transpose(-2, -1)) / (D // s.h) ** 0.5, dim=-1)
        s.last = a
        return s.proj((a @ v).transpose(1, 2).reshape(B, T, D))
class Layer(nn.Module):
    def __init__(s, d, h):
        super().__init__(); s.n1 = nn.LayerNorm(d); s.att = Attention(d, h); s.n2 = nn.LayerNorm(d); s.mlp = nn.Sequential(nn.Linear(d, 2 * d), nn.GELU(), nn.Linear(2 * d, d))
    def forward(s, x):
        x = x + s.att(s.n1(x)); return x + s.mlp(s.n2(x))
class ViT(nn.Module):
    def __init__(s, size, patch=8, d=32, heads=2, depth=3, nc=5):
        super().__init__()
        s.embed = nn.Conv2d(3, d, patch, patch); n = (size // patch) ** 2
        s.cls = nn.Parameter(torch.randn(1, 1, d) * 0.5); s.pos = nn.Parameter(torch.randn(1, n + 1, d) * 0.5)
        s.layers = nn.ModuleList([Layer(d, heads) for _ in range(depth)]); s.norm = nn.LayerNorm(d); s.head = nn.Linear(d, nc)
    def forward(s, x):
        x = s.embed(x).flatten(2).transpose(1, 2)
        x = torch.cat([s.cls.expand(x.shape[0], -1, -1), x], 1) + s.pos
        for l in s.layers: x = l(x)
        return torch.softmax(s.head(s.norm(x)[:, 0]), -1)
vit = ViT(S).eval()
torch.onnx.export(vit, torch.zeros(1, 3, S, S), f'{out_dir}/vit.onnx', input_names=['images'], output_names=['output0'],
                  dynamic_axes={'images': {0: 'batch'}, 'output0': {0: 'batch'}}, opset_version=17, dynamo=False)
rollouts = []
with torch.no_grad():
    for x in images:
        vit(x)
        att = [l.att.last for l in vit.layers]
        T = att[0].shape[-1]
        result = torch.eye(T, dtype=torch.float64)
        for a in att:
            fused = a[0].double().mean(0) + torch.eye(T, dtype=torch.float64)
            fused = fused / fused.sum(-1, keepdim=True)
            result = fused @ result
        side = int(round((T - 1) ** 0.5))
        mask = result[0, 1:].reshape(side, side).numpy()
        # As every map: ReLU, scale_cam_image to the input size, ReLU, scale_cam_image.
        m = scale_cam_image(np.maximum(mask, 0)[None], (S, S))
        rollouts.append(scale_cam_image(np.maximum(m, 0))[0].astype(np.float64).reshape(-1).tolist())
print(json.dumps({'images': [x[0].numpy().astype(np.float64).reshape(-1).tolist() for x in images], 'cams': cams, 'raw_max': raw_max, 'rollouts': rollouts,
                  'probs': [cnn(x)[0].detach().numpy().astype(np.float64).tolist() for x in images]}))
`;
