"""THINGSvision's model sources for models/export.py (`--source SOURCE --model NAME`).

THINGSvision (`get_extractor(model_name, source, pretrained, model_parameters)`) names a model by a
source and a name; this module builds the same eager model, in eval mode, under the same names:

- `torchvision`: any torchvision classification model (handled by export.py's `--arch` path).
- `timm`: `timm.create_model(name)` for every name of `timm.list_models()` (a pretrained tag such as
  `vit_base_patch16_224.augreg_in21k` is allowed); preprocessing from timm's
  `resolve_model_data_config` as THINGSvision's TimmExtractor uses it.
- `ssl`: THINGSvision's SSLExtractor.MODELS: ResNet-50s (torchvision resnet50 with `fc` = Identity)
  whose published checkpoints are converted from their key layouts (VISSL `classy_state_dict`
  trunks, `_feature_blocks.` prefixes; plain torchvision layouts), DINO and DINOv2 ViTs
  (models/ssl_vits.py) and MAE ViTs (timm's VisionTransformer returning the CLS token after
  `norm`, as THINGSvision's utils/models/mae). THINGSvision's default preprocessing.
- `custom`: CORnet (`cornet-s` …), Ecoset models (torchvision architectures with 565 classes),
  `OpenCLIP` (open_clip, `variant` + `dataset`) and `clip` (OpenAI's CLIP, built by open_clip).

Every model builds with seeded random weights offline; pretrained weights come through each
library's own download mechanism (timm: Hugging Face hub; open_clip: its pretrained registry;
others: torch.hub.load_state_dict_from_url with THINGSvision's URLs) and fail offline with one
line. timm and open_clip are imported only when used (install them with scripts/setup-venv.sh).
"""
import contextlib
import io
import math
import os
import socket
import sys
import warnings
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch
import torchvision
from torch import nn

import ssl_vits

SOURCES = ("torchvision", "timm", "ssl", "custom")
IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]


class SourceError(Exception):
    """An error reported to the user as one line (export.py turns it into its ExportError)."""


@contextlib.contextmanager
def quiet():
    """Silences library warnings and progress output, also what libraries write to file
    descriptor 2 directly or through logging handlers made earlier (download retries)."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with contextlib.redirect_stderr(io.StringIO()):
                yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


def hub_offline_when_unreachable(host: str = "huggingface.co") -> None:
    """Before timm/open_clip are imported: when `host` does not resolve, sets HF_HUB_OFFLINE=1 so
    that the Hugging Face hub answers from its cache at once instead of retrying for a minute."""
    if "timm" in sys.modules or "open_clip" in sys.modules or os.environ.get("HF_HUB_OFFLINE"):
        return
    try:
        socket.getaddrinfo(host, 443)
    except OSError:
        os.environ["HF_HUB_OFFLINE"] = "1"


def _import(module: str):
    try:
        return __import__(module)
    except ImportError as e:
        pip_name = {"timm": "timm", "open_clip": "open-clip-torch"}.get(module, module)
        raise SourceError(f"this source needs the Python package '{module}', which this python "
                          f"lacks ({e}); run scripts/setup-venv.sh and use .venv/bin/python "
                          f"(or pip install {pip_name})")


def first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


# ------------------------------------------------------------------------------------ a built model
class SourceModel:
    """An eager model built from a source, and what its sidecar says about it."""

    def __init__(self, model: nn.Module, stem: str, family: str, preprocessing: Dict[str, Any]):
        self.model = model
        self.stem = stem                  # output file name without extension
        self.family = family
        self.preprocessing = preprocessing
        self.entry_method = "forward"
        self.methods = ["forward"]
        self.suggested: List[str] = []
        self.batch_dim_hint: Optional[Dict[str, int]] = None
        self.sidecar: Dict[str, Any] = {}   # extra sidecar keys
        self.weights_tag: Optional[str] = None
        self.trace_reason: Optional[str] = None   # why export.py should trace before scripting


def preprocessing(preset: str, resize: int, crop_h: int, crop_w: int, interpolation: str,
                  mean, std, resize_mode: str = "shorter_side", resize_hw=(0, 0)) -> Dict[str, Any]:
    """A sidecar `preprocessing` object (models/README.md)."""
    return {
        "preset": preset,
        "resize_mode": resize_mode,
        "resize_size": int(resize) if resize_mode == "shorter_side" else 0,
        "resize_height": int(resize_hw[0]),
        "resize_width": int(resize_hw[1]),
        "interpolation": interpolation,
        "crop_height": int(crop_h),
        "crop_width": int(crop_w),
        "mean": [float(v) for v in mean],
        "std": [float(v) for v in std],
        "channel_order": "rgb",
        "scale": "0-1",
    }


def thingsvision_preprocessing() -> Dict[str, Any]:
    """THINGSvision's default: Resize(256) bilinear, CenterCrop(224), ImageNet mean/std."""
    return preprocessing("thingsvision", 256, 224, 224, "bilinear", IMAGENET_MEAN, IMAGENET_STD)


def safe_stem(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in text)


def existing(model: nn.Module, candidates: List[str]) -> List[str]:
    """The candidates that name modules of `model`, without pass-throughs (nn.Identity), whose
    outputs a trace does not record."""
    names = {n for n, m in model.named_modules() if n and not isinstance(m, nn.Identity)}
    return [c for c in candidates if c in names]


def token_layout(model: nn.Module) -> Optional[Dict[str, Any]]:
    """For token models: how many tokens precede the patch tokens, and whether the first is CLS."""
    prefix = getattr(model, "num_prefix_tokens", None)
    if prefix is None:
        return None
    return {"prefix_tokens": int(prefix), "cls_token": getattr(model, "cls_token", None) is not None}


# ------------------------------------------------------------------------------------ timm
def timm_models() -> List[str]:
    timm = _import("timm")
    return list(timm.list_models())


def timm_preprocessing(model: nn.Module, name: str) -> Dict[str, Any]:
    """timm's eval transform (timm.data.resolve_model_data_config + create_transform, as
    THINGSvision's TimmExtractor): Resize(floor(size / crop_pct)) + CenterCrop(size), or the
    'squash' crop mode's fixed resize. Modes the C++ transform cannot express are an error."""
    timm = _import("timm")
    cfg = timm.data.resolve_model_data_config(model)
    _, height, width = cfg["input_size"]
    crop_pct = cfg.get("crop_pct") or 0.875
    crop_mode = cfg.get("crop_mode") or "center"
    interpolation = cfg.get("interpolation", "bilinear")
    if interpolation not in ("bilinear", "bicubic"):
        raise SourceError(f"timm model {name}: its interpolation '{interpolation}' has no C++ "
                          f"transform (bilinear and bicubic have)")
    scale_h, scale_w = math.floor(height / crop_pct), math.floor(width / crop_pct)
    preset = f"timm:{name}"
    if crop_mode == "squash":
        prep = preprocessing(preset, 0, height, width, interpolation, cfg["mean"], cfg["std"],
                             "fixed", (scale_h, scale_w))
    elif crop_mode == "center" and scale_h == scale_w:
        prep = preprocessing(preset, scale_h, height, width, interpolation, cfg["mean"], cfg["std"])
    else:
        raise SourceError(f"timm model {name}: crop mode '{crop_mode}' with input size "
                          f"{height}x{width} has no C++ transform (center crops of a square "
                          f"input and 'squash' have)")
    prep["crop_pct"] = float(crop_pct)
    prep["crop_mode"] = crop_mode
    return prep


def timm_suggested(model: nn.Module) -> List[str]:
    names = [n for n, _ in model.named_modules() if n]
    blocks = [n for n in names if n.startswith("blocks.") and n.count(".") == 1]
    if blocks:
        return existing(model, [blocks[0], blocks[-1], "norm", "fc_norm", "global_pool", "head"])[:3]
    picks = []
    for info in getattr(model, "feature_info", []) or []:
        module = info.get("module") if isinstance(info, dict) else None
        if module:
            picks.append(module.replace("_", ".") if module not in names else module)
    named = dict(model.named_modules())
    # a ModuleList is never called itself: its last child's output is the stage's output
    picks = [f"{p}.{len(named[p]) - 1}" if isinstance(named.get(p), (nn.ModuleList,)) and len(named[p])
             else p for p in picks]
    picks = existing(model, picks)
    found = (picks[:1] + picks[-1:]) if picks else []
    found += existing(model, ["global_pool", "head.global_pool", "head"])[:1]
    # else every child (called_modules keeps those that compute something; build_timm the ends)
    return found or existing(model, [n for n, _ in model.named_children()])


def called_modules(model: nn.Module, names: List[str], prep: Dict[str, Any]) -> List[str]:
    """The modules of `names` that a forward pass calls and that compute something: containers
    such as a ModuleList whose children forward() iterates are never called, and a pass-through
    (its output is its input: nn.Identity, Dropout in eval mode) adds nothing, and for
    nn.Identity a trace records no output at all."""
    called = set()
    named = dict(model.named_modules())

    def hook(name: str):
        def record(_m, inputs, output):
            if not (len(inputs) == 1 and output is inputs[0]):
                called.add(name)
        return record
    handles = [named[n].register_forward_hook(hook(n)) for n in names if n in named]
    try:
        with torch.no_grad():
            model(torch.zeros(1, 3, prep["crop_height"] or prep["resize_height"],
                              prep["crop_width"] or prep["resize_width"]))
    finally:
        for h in handles:
            h.remove()
    kept = [n for n in names if n in called]
    return kept or names


def build_timm(name: str, weights: str, state_dict: Optional[Dict[str, torch.Tensor]],
               load_checked: Callable) -> SourceModel:
    timm = _import("timm")
    if name.split(".")[0] not in timm.list_models():
        raise SourceError(f"--model '{name}' is not a timm model (see --list --source timm)")
    pretrained = weights == "pretrained"
    try:
        with quiet():
            model = timm.create_model(name, pretrained=pretrained, scriptable=True)
    except Exception as e:  # noqa: BLE001 - a download failure is one line
        if pretrained:
            raise SourceError(f"downloading the pretrained weights of timm model {name} through "
                              f"timm (Hugging Face hub) failed ({first_line(e)}); download them "
                              f"on a machine with network access (timm.create_model('{name}', "
                              f"pretrained=True) fills the Hugging Face cache, $HF_HOME) and copy "
                              f"the cache over, or save the state dict and use --state-dict FILE")
        raise SourceError(f"timm cannot build {name}: {first_line(e)}")
    if state_dict is not None:
        load_checked(model, state_dict)
    model.eval()
    out = SourceModel(model, safe_stem(name), "timm", timm_preprocessing(model, name))
    picks = called_modules(model, timm_suggested(model), out.preprocessing)
    out.suggested = picks if len(picks) <= 3 else picks[:1] + picks[-1:]
    # timm's forward takes optional arguments (attn_mask, ...) and branches on them, so a
    # scripted graph calls the blocks inside a branch, where tv-extract cannot tap them.
    out.trace_reason = ("traced so that every module call can be tapped: timm's scripted forward "
                        "calls its blocks inside branches on optional arguments")
    layout = token_layout(model)
    if layout:
        out.sidecar["token_layout"] = layout
    out.sidecar["timm_version"] = timm.__version__
    return out


# ------------------------------------------------------------------------------------ ssl
VISSL = "https://dl.fbaipublicfiles.com/vissl/model_zoo/"
SSL_RESNET50 = {
    # THINGSvision name -> (checkpoint layout, published URL)
    "simclr-rn50": ("vissl", VISSL + "simclr_rn50_800ep_simclr_8node_resnet_16_07_20.7e8feed1/model_final_checkpoint_phase799.torch"),
    "mocov2-rn50": ("vissl", VISSL + "moco_v2_1node_lr.03_step_b32_zero_init/model_final_checkpoint_phase199.torch"),
    "jigsaw-rn50": ("vissl", VISSL + "jigsaw_rn50_in1k_ep105_perm2k_jigsaw_8gpu_resnet_17_07_20.db174a43/model_final_checkpoint_phase104.torch"),
    "rotnet-rn50": ("vissl", VISSL + "rotnet_rn50_in1k_ep105_rotnet_8gpu_resnet_17_07_20.46bada9f/model_final_checkpoint_phase125.torch"),
    "swav-rn50": ("vissl", VISSL + "swav_in1k_rn50_800ep_swav_8node_resnet_27_07_20.a0a6b676/model_final_checkpoint_phase799.torch"),
    "pirl-rn50": ("vissl", VISSL + "pirl_jigsaw_4node_pirl_jigsaw_4node_resnet_22_07_20.34377f59/model_final_checkpoint_phase799.torch"),
    "barlowtwins-rn50": ("torchvision", "https://dl.fbaipublicfiles.com/barlowtwins/ljng/resnet50.pth"),
    "vicreg-rn50": ("torchvision", "https://dl.fbaipublicfiles.com/vicreg/resnet50.pth"),
    "dino-rn50": ("torchvision", "https://dl.fbaipublicfiles.com/dino/dino_resnet50_pretrain/dino_resnet50_pretrain.pth"),
}
MAE_VITS = {
    "mae-vit-base-p16": (16, 768, 12, 12, "https://dl.fbaipublicfiles.com/mae/pretrain/mae_pretrain_vit_base.pth"),
    "mae-vit-large-p16": (16, 1024, 24, 16, "https://dl.fbaipublicfiles.com/mae/pretrain/mae_pretrain_vit_large.pth"),
    "mae-vit-huge-p14": (14, 1280, 32, 16, "https://dl.fbaipublicfiles.com/mae/pretrain/mae_pretrain_vit_huge.pth"),
}
# THINGSvision lists these (torch.hub: facebookresearch/dino's XCiT) but they are not exported here.
SSL_NOT_EXPORTED = {
    f"dino-xcit-{size}-p{p}": "XCiT: torch.hub code from GitHub (facebookresearch/dino + xcit), not "
                              "written here"
    for size in ("small-12", "medium-24") for p in (16, 8)
}


def ssl_models() -> List[str]:
    return list(SSL_RESNET50) + ssl_vits.names() + list(MAE_VITS)


def convert_ssl_resnet50(obj: Any, name: str, source: str) -> Dict[str, torch.Tensor]:
    """A published ResNet-50 checkpoint's tensors as torchvision resnet50 (fc = Identity) keys.

    Layouts, as THINGSvision reads them: VISSL files ({'classy_state_dict': {'base_model':
    {'model': {'trunk': ...}}}} or {'model_state_dict': ...}) with keys prefixed `_feature_blocks.`;
    plain torchvision state dicts without `fc` (Barlow Twins, VICReg, DINO-RN50). Also accepted:
    a `state_dict`/`model` wrapper and a DataParallel `module.` prefix. Head keys (`fc.`,
    `heads.`) are dropped: THINGSvision's model has no classifier."""
    layout = SSL_RESNET50[name][0]
    trunk = obj
    if isinstance(obj, dict) and "classy_state_dict" in obj:
        try:
            trunk = obj["classy_state_dict"]["base_model"]["model"]["trunk"]
        except (KeyError, TypeError):
            raise SourceError(f"{source}: a VISSL checkpoint without "
                              f"classy_state_dict/base_model/model/trunk")
    elif isinstance(obj, dict) and "model_state_dict" in obj:
        trunk = obj["model_state_dict"]
    else:
        for key in ("state_dict", "model"):
            if isinstance(obj, dict) and isinstance(obj.get(key), dict):
                trunk = obj[key]
                break
    if not isinstance(trunk, dict) or not all(isinstance(v, torch.Tensor) for v in trunk.values()):
        raise SourceError(f"{source}: no ResNet-50 tensors found (expected a VISSL checkpoint, "
                          f"{{'model_state_dict': ...}} or a state dict; {name} is published as a "
                          f"{layout} layout)")
    out = {}
    for key, value in trunk.items():
        for prefix in ("module.", "_feature_blocks."):
            if key.startswith(prefix):
                key = key[len(prefix):]
        if key.startswith(("fc.", "heads.")):
            continue
        out[key] = value
    return out


def build_ssl(name: str, weights: str, sd_file: Optional[str], read_file: Callable,
              download: Callable, load_checked: Callable) -> SourceModel:
    if name in SSL_NOT_EXPORTED:
        raise SourceError(f"ssl model {name} is not exported here: {SSL_NOT_EXPORTED[name]}")
    if name not in ssl_models():
        raise SourceError(f"--model '{name}' is not an ssl model (see --list --source ssl)")
    obj, source = None, None
    if sd_file:
        obj, source = read_file(sd_file), f"--state-dict {sd_file}"
    elif weights == "pretrained":
        url = (SSL_RESNET50.get(name) or MAE_VITS.get(name) or (None, ssl_vits.checkpoint_url(name)))[-1]
        obj, source = download(url, name), url
    extra: Dict[str, Any] = {}
    if name in SSL_RESNET50:
        model = torchvision.models.resnet50()
        model.fc = nn.Identity()
        if obj is not None:
            load_checked(model, convert_ssl_resnet50(obj, name, source), source)
        suggested = ["layer1", "layer4", "avgpool"]
        extra["checkpoint_layout"] = SSL_RESNET50[name][0]
    elif name in MAE_VITS:
        model = build_mae(name)
        if obj is not None:
            sd = obj.get("model", obj) if isinstance(obj, dict) else obj
            ignored = load_mae(model, sd, source)
            if ignored:
                extra["ignored_checkpoint_keys"] = ignored
        suggested = ["blocks.0", f"blocks.{len(model.blocks) - 1}", "norm"]
        extra["timm_version"] = _import("timm").__version__
        extra["token_layout"] = token_layout(model)
    else:
        model = ssl_vits.build(name)
        if obj is not None:
            sd = obj
            for key in ("teacher", "state_dict", "model"):  # training checkpoints wrap it
                if isinstance(sd, dict) and isinstance(sd.get(key), dict):
                    sd = sd[key]
            sd = {k[len("backbone."):] if k.startswith("backbone.") else k: v
                  for k, v in sd.items() if not k.startswith("head.")}
            load_checked(model, sd, source)
        suggested = ["blocks.0", f"blocks.{len(model.blocks) - 1}", "norm"]
        extra["token_layout"] = {"prefix_tokens": 1, "cls_token": True}
    model.eval()
    out = SourceModel(model, name, "ssl", thingsvision_preprocessing())
    out.suggested = suggested
    out.sidecar.update(extra)
    return out


def build_mae(name: str) -> nn.Module:
    """THINGSvision's MAE ViT (models/mae_vit.py)."""
    _import("timm")
    import mae_vit
    with quiet():
        return mae_vit.build(name)


def load_mae(model: nn.Module, sd: Dict[str, torch.Tensor], source: str) -> List[str]:
    """THINGSvision loads MAE checkpoints with strict=False (decoder keys are dropped); missing
    encoder keys and shape mismatches are still an error here. Returns the ignored keys."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in sd]
    mismatched = [k for k in expected if k in sd and sd[k].shape != expected[k].shape]
    if missing or mismatched:
        raise SourceError(f"{source} does not fit the MAE ViT: missing keys "
                          f"{', '.join(missing[:8]) or 'none'}; shape mismatches "
                          f"{', '.join(mismatched[:8]) or 'none'}")
    model.load_state_dict({k: sd[k] for k in expected}, strict=True)
    return sorted(k for k in sd if k not in expected)


# ------------------------------------------------------------------------------------ custom
ECOSET = {
    # THINGSvision class name -> (torchvision architecture, published URL (OSF))
    "Alexnet_ecoset": ("alexnet", "https://osf.io/t6h3c/download"),
    "Resnet50_ecoset": ("resnet50", "https://osf.io/gd9kn/download"),
    "VGG16_ecoset": ("vgg16", "https://osf.io/z5uf3/download"),
    "Inception_ecoset": ("inception_v3", "https://osf.io/zn24d/download"),
    "AlexNet_SalObjSub": ("alexnet", "https://osf.io/download/sd3xj/"),
}
CORNET = {"cornet-z": "cornet_z", "cornet-r": "cornet_r", "cornet-rt": "cornet_rt",
          "cornet-s": "cornet_s"}
# THINGSvision's other custom models, and why they are not exported here.
CUSTOM_NOT_EXPORTED = {
    "DreamSim": "needs the dreamsim package and its downloaded heads (not on this machine)",
    "Harmonization": "TensorFlow/Keras models (use an ONNX conversion: docs/onnx-exports.md)",
    "SegmentAnything": "needs the segment_anything package",
    "Kakaobrain_Align": "a Hugging Face transformers model",
}
OPENCLIP_DEFAULT = ("ViT-B-32-quickgelu", "laion400m_e32")   # THINGSvision's defaults
CLIP_DEFAULT = "ViT-B/32"


def custom_models() -> List[str]:
    return list(CORNET) + list(ECOSET) + ["OpenCLIP", "clip"]


def openclip_pairs() -> List[Tuple[str, str]]:
    return [tuple(p) for p in _import("open_clip").list_pretrained()]


def bpe_tokenizer(variant: str) -> Optional[str]:
    """None when `variant`'s text tower uses CLIP's BPE tokenizer with 77 tokens (ours), else why
    --text is out of scope for it."""
    cfg = _import("open_clip").get_model_config(variant) or {}
    text = cfg.get("text_cfg", {})
    if text.get("hf_tokenizer_name"):
        return f"Hugging Face tokenizer {text['hf_tokenizer_name']}"
    if text.get("tokenizer_kwargs"):
        return f"CLIP BPE with options {text['tokenizer_kwargs']}"
    if text.get("context_length", 77) != 77 or text.get("vocab_size", 49408) != 49408:
        return (f"context length {text.get('context_length', 77)}, vocabulary "
                f"{text.get('vocab_size', 49408)} (tv-extract --text tokenizes to 77 of 49408)")
    return None


def build_openclip(variant: str, dataset: Optional[str], weights: str,
                   sd: Optional[Dict[str, torch.Tensor]], load_checked: Callable,
                   quick_gelu: bool = False) -> Tuple[nn.Module, Dict[str, Any]]:
    open_clip = _import("open_clip")
    if variant not in open_clip.list_models():
        raise SourceError(f"--variant '{variant}' is not an open_clip model (see --list --source "
                          f"custom)")
    pairs = openclip_pairs()
    if dataset is not None and (variant, dataset) not in pairs:
        valid = [d for v, d in pairs if v == variant]
        raise SourceError(f"--dataset '{dataset}' is not a pretrained tag of {variant}; valid: "
                          f"{', '.join(valid) or 'none (random weights only)'}")
    # --state-dict comes as weights "pretrained" with `sd`: no download then, and no tag needed
    pretrained = dataset if weights == "pretrained" and sd is None else None
    if weights == "pretrained" and sd is None and dataset is None:
        raise SourceError(f"pretrained OpenCLIP weights need --dataset (tags of {variant}: "
                          f"{', '.join(d for v, d in pairs if v == variant)})")
    if hf_text_model(variant):
        model = build_openclip_image_tower(variant, dataset, pretrained, sd, load_checked, quick_gelu)
        return model, openclip_preprocess_cfg(model, variant, dataset)
    try:
        with quiet():
            model = open_clip.create_model(variant, pretrained=pretrained,
                                           force_quick_gelu=quick_gelu)
    except Exception as e:  # noqa: BLE001
        if pretrained:
            raise openclip_download_error(variant, dataset, e)
        raise SourceError(f"open_clip cannot build {variant}: {first_line(e)}")
    if sd is not None:
        load_checked(model, sd)
    model.eval()
    return model, openclip_preprocess_cfg(model, variant, dataset)


def openclip_download_error(variant: str, dataset: str, e: BaseException) -> SourceError:
    """The one-line error of a failed download of open_clip's pretrained weights."""
    return SourceError(f"downloading the pretrained weights of OpenCLIP {variant}/{dataset} "
                       f"through open_clip failed ({first_line(e)}); download them on a machine "
                       f"with network access (open_clip.download_pretrained(open_clip."
                       f"get_pretrained_cfg('{variant}', '{dataset}')) fills the Hugging Face cache, "
                       f"$HF_HOME, without building the model) and copy the cache over, or use "
                       f"--state-dict FILE")


def openclip_preprocess_cfg(model: nn.Module, variant: str, dataset: Optional[str]) -> Dict[str, Any]:
    """open_clip's preprocessing of `model` (its image tower's), with the pretrained tag's
    mean/std/interpolation/resize mode where `dataset` names one."""
    open_clip = _import("open_clip")
    cfg = dict(open_clip.get_model_preprocess_cfg(model))
    if dataset is not None:
        tag = open_clip.get_pretrained_cfg(variant, dataset) or {}
        for key in ("mean", "std", "interpolation", "resize_mode"):
            if tag.get(key) is not None:
                cfg[key] = tag[key]
    return cfg


def hf_text_model(variant: str) -> Optional[str]:
    """The Hugging Face model of `variant`'s text tower (RoBERTa, XLM-R, mT5, NLLB), else None."""
    cfg = _import("open_clip").get_model_config(variant) or {}
    return (cfg.get("text_cfg") or {}).get("hf_model_name")


class OpenClipImageTower(nn.Module):
    """The image tower of an open_clip model whose text tower is a Hugging Face model, under its
    name in the full model (`visual`); forward is the model's encode_image."""

    def __init__(self, visual: nn.Module):
        super().__init__()
        self.visual = visual

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.visual(image)


class CocaImageTower(OpenClipImageTower):
    """OpenClipImageTower for CoCa, whose tower returns (latent, tokens) and whose encode_image
    returns the latent normalised."""

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        latent, _ = self.visual(image)
        return nn.functional.normalize(latent, dim=-1)


# A native text tower small enough to build in no time: open_clip builds it in place of the Hugging
# Face one, and only the image tower is kept.
_PLACEHOLDER_TEXT_CFG = {"context_length": 77, "vocab_size": 64, "width": 64, "heads": 1, "layers": 1}


def build_openclip_image_tower(variant: str, dataset: Optional[str], pretrained: Optional[str],
                               sd: Optional[Dict[str, torch.Tensor]], load_checked: Callable,
                               quick_gelu: bool) -> nn.Module:
    """The image tower of `variant` alone, as open_clip builds it. Its Hugging Face text tower
    would need transformers and the hub's config even for random weights, and its tokenizer is
    out of scope for tv-extract --text. Weights: the `visual.*` tensors of the checkpoint."""
    open_clip = _import("open_clip")
    if pretrained:
        try:
            with quiet():
                path = open_clip.download_pretrained(open_clip.get_pretrained_cfg(variant, pretrained))
                sd = open_clip.factory.load_state_dict(path)
        except Exception as e:  # noqa: BLE001 - a download failure is one line
            raise openclip_download_error(variant, pretrained, e)
    try:
        with quiet():
            full = open_clip.create_model(variant, pretrained=None, force_quick_gelu=quick_gelu,
                                          text_cfg=dict(_PLACEHOLDER_TEXT_CFG))
    except Exception as e:  # noqa: BLE001
        raise SourceError(f"open_clip cannot build the image tower of {variant}: {first_line(e)}")
    tower = (CocaImageTower if isinstance(full, open_clip.CoCa) else OpenClipImageTower)(full.visual)
    del full
    if sd is not None:
        visual = {k: v for k, v in sd.items() if k.startswith("visual.")}
        if not visual:
            raise SourceError(f"the checkpoint of {variant} has no 'visual.*' tensors (an open_clip "
                              f"checkpoint's image tower); its keys start with "
                              f"{sorted({k.split('.')[0] for k in sd})[:6]}")
        load_checked(tower, visual)
    return tower.eval()


def openclip_preprocessing(cfg: Dict[str, Any], preset: str) -> Dict[str, Any]:
    """open_clip's eval transform: Resize + CenterCrop (resize_mode 'shortest') or a fixed resize
    ('squash'), bicubic by default, then the tower's mean/std."""
    size = cfg["size"]
    h, w = (size, size) if isinstance(size, int) else tuple(size)
    interpolation = cfg.get("interpolation") or "bicubic"
    mode = cfg.get("resize_mode") or "shortest"
    if interpolation not in ("bilinear", "bicubic"):
        raise SourceError(f"{preset}: interpolation '{interpolation}' has no C++ transform")
    if mode == "shortest" and h == w:
        return preprocessing(preset, h, h, w, interpolation, cfg["mean"], cfg["std"])
    if mode == "squash":
        return preprocessing(preset, 0, 0, 0, interpolation, cfg["mean"], cfg["std"], "fixed", (h, w))
    raise SourceError(f"{preset}: open_clip resize mode '{mode}' at {h}x{w} has no C++ transform")


def build_custom(name: str, params: Dict[str, Any], weights: str, sd_file: Optional[str],
                 read_file: Callable, download: Callable, load_checked: Callable) -> SourceModel:
    if name in CUSTOM_NOT_EXPORTED:
        raise SourceError(f"custom model {name} is not exported here: {CUSTOM_NOT_EXPORTED[name]}")
    sd, source = None, None
    if sd_file:
        sd, source = read_file(sd_file), f"--state-dict {sd_file}"
    if name in ECOSET:
        arch, url = ECOSET[name]
        if sd is None and weights == "pretrained":
            sd, source = download(url, name), url
        kwargs: Dict[str, Any] = {"num_classes": 565}
        if arch == "inception_v3":  # as THINGSvision: aux head kept (unused in eval), no transform_input
            kwargs.update(aux_logits=True, transform_input=False, init_weights=True)
        with quiet():
            model = torchvision.models.get_model(arch, weights=None, **kwargs)
        if sd is not None:
            load_checked(model, sd, source)
        model.eval()
        out = SourceModel(model, name, "ecoset", thingsvision_preprocessing())
        out.sidecar["architecture_base"] = arch
        out.sidecar["num_classes"] = 565
        return out
    if name in ("OpenCLIP", "clip"):
        if name == "OpenCLIP":
            variant = params.get("variant") or OPENCLIP_DEFAULT[0]
            dataset = params.get("dataset")
            if dataset is None and "variant" not in params:
                dataset = OPENCLIP_DEFAULT[1]
            quick_gelu = False
            stem = f"OpenCLIP_{variant}" + (f"_{dataset}" if dataset else "")
        else:
            clip_variant = params.get("variant") or CLIP_DEFAULT
            variant = clip_variant.replace("/", "-")
            dataset = "openai"
            quick_gelu = True  # OpenAI's CLIP uses QuickGELU
            stem = f"clip_{variant}"
            params = {"variant": clip_variant}
        def checked(model, state):
            load_checked(model, state, source)
        model, cfg = build_openclip(variant, dataset, weights, sd, checked, quick_gelu)
        preset = f"open_clip:{variant}" + (f":{dataset}" if dataset else "")
        out = SourceModel(model, safe_stem(stem), "open_clip", openclip_preprocessing(cfg, preset))
        image_only = isinstance(model, OpenClipImageTower)
        if not image_only:
            out.entry_method = "encode_image"
            out.methods = ["encode_image", "encode_text", "forward"]
        visual = [n for n, _ in model.named_modules() if n.startswith("visual.transformer.resblocks.")
                  and n.count(".") == 3]
        trunk = getattr(model.visual, "trunk", None)  # open_clip's TimmModel: a timm image tower
        if visual:
            out.suggested = visual[:1] + visual[-1:] + ["visual"]
        elif isinstance(trunk, nn.Module):
            picks = called_modules(trunk, timm_suggested(trunk), out.preprocessing)
            out.suggested = [f"visual.trunk.{n}" for n in picks[:2]] + ["visual"]
            # as for timm's own models: scripted, the trunk calls its blocks inside a branch
            out.trace_reason = ("traced: a scripted timm trunk calls its blocks inside a branch, "
                                "where tv-extract cannot tap them")
        else:
            out.suggested = existing(model, ["visual.layer1", "visual.layer4", "visual"])
        transformer = getattr(model, "transformer", None)
        if transformer is not None and not getattr(transformer, "batch_first", True):
            out.batch_dim_hint = {"visual.transformer": 1, "transformer": 1}
        if image_only:
            out.sidecar["tokenizer"] = "unsupported"
            out.sidecar["tokenizer_note"] = (
                f"the archive holds the image tower only (forward = open_clip's encode_image): the "
                f"text tower is the Hugging Face model '{hf_text_model(variant)}', whose tokenizer "
                f"is out of scope for tv-extract --text")
        else:
            out.sidecar["context_length"] = int(getattr(model, "context_length", 77))
            out.sidecar["vocab_size"] = int(getattr(model, "vocab_size", 49408))
            reason = bpe_tokenizer(variant)
            out.sidecar["tokenizer"] = "clip_bpe" if reason is None else "unsupported"
            if reason:
                out.sidecar["tokenizer_note"] = f"tv-extract --text is out of scope: {reason}"
        out.sidecar["open_clip_version"] = _import("open_clip").__version__
        out.sidecar["model_parameters"] = {"variant": params.get("variant", variant)}
        if name == "OpenCLIP" and dataset:
            out.sidecar["model_parameters"]["dataset"] = dataset
        return out
    raise SourceError(f"--model '{name}' is not a custom model (see --list --source custom)")
