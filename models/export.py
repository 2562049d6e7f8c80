#!/usr/bin/python3
"""Exports vision models as TorchScript files with a JSON sidecar, for thingsvision-cpp.

  /usr/bin/python3 models/export.py --list
  /usr/bin/python3 models/export.py --arch resnet50 --weights random [--seed 0] --out DIR
  /usr/bin/python3 models/export.py --arch resnet50 --weights pretrained --out DIR
  /usr/bin/python3 models/export.py --arch resnet50 --state-dict FILE [--weights-tag TAG] --out DIR
  .venv/bin/python models/export.py --source timm --model vit_small_patch16_224 --weights random --out DIR
  .venv/bin/python models/export.py --source custom --model OpenCLIP --variant ViT-B-32 --pretrained --out DIR
  .venv/bin/python models/export.py --list --source ssl

writes DIR/NAME.pt (TorchScript, scripted; traced only where scripting fails, recorded in the
sidecar; the eager model's repr is stored in the archive as "module_tree.txt") and DIR/NAME.json
(the sidecar, schema in models/README.md). Architectures: every torchvision classification model,
CORnet-Z/R/RT/S (models/cornet.py) and two CLIP-like stand-ins (models/clip_standin.py). With
--source/--model, THINGSvision's names: source torchvision, timm, ssl or custom (models/sources.py).
--arch needs only Debian's python3-torch 1.13 / python3-torchvision 0.14; timm and open_clip models
need the venv of scripts/setup-venv.sh. Errors are one line on stderr.
"""
import os
import sys

if __name__ == "__main__" and os.environ.get("PYTHONHASHSEED") != "0":
    # TorchScript writes a module's constants in set order, which depends on Python's string hash
    # seed: fix it (before torch is imported) so that the same export gives the same bytes.
    os.environ["PYTHONHASHSEED"] = "0"
    os.execv(sys.executable, [sys.executable] + sys.argv)

import argparse  # noqa: E402
import contextlib  # noqa: E402
import hashlib  # noqa: E402
import inspect  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import warnings  # noqa: E402
from typing import Any, Dict, List, Optional, Tuple  # noqa: E402

import torch  # noqa: E402
import torchvision  # noqa: E402
from torch import nn  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import clip_standin  # noqa: E402
import cornet  # noqa: E402
import sources  # noqa: E402

SCHEMA_VERSION = 1
IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]
CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]


class ExportError(Exception):
    """An error reported to the user as one line."""


# ------------------------------------------------------------------------------- architectures
def torchvision_architectures() -> List[str]:
    """Every classification architecture of the installed torchvision (0.14: 80)."""
    return sorted(torchvision.models.list_models(module=torchvision.models))


def all_architectures() -> List[str]:
    return (torchvision_architectures() + list(cornet.ARCHITECTURES)
            + list(clip_standin.ARCHITECTURES))


def family(arch: str) -> str:
    if arch in cornet.ARCHITECTURES:
        return "cornet"
    if arch in clip_standin.ARCHITECTURES:
        return "clip"
    if arch in torchvision_architectures():
        return "torchvision"
    raise ExportError(f"unknown architecture '{arch}' (see --list)")


# ------------------------------------------------------------------------------- preprocessing
def thingsvision_preprocessing() -> Dict[str, Any]:
    """THINGSvision's default: Resize(256) bilinear, CenterCrop(224), ImageNet mean/std."""
    return preprocessing("thingsvision", 256, 224, "bilinear", IMAGENET_MEAN, IMAGENET_STD)


def clip_preprocessing() -> Dict[str, Any]:
    """CLIP's transform: Resize(224) bicubic, CenterCrop(224), CLIP mean/std."""
    return preprocessing("clip", 224, 224, "bicubic", CLIP_MEAN, CLIP_STD)


def preprocessing(preset: str, resize: int, crop: int, interpolation: str, mean: List[float],
                  std: List[float]) -> Dict[str, Any]:
    return {
        "preset": preset,
        "resize_mode": "shorter_side",
        "resize_size": int(resize),
        "resize_height": 0,
        "resize_width": 0,
        "interpolation": interpolation,
        "crop_height": int(crop),
        "crop_width": int(crop),
        "mean": [float(v) for v in mean],
        "std": [float(v) for v in std],
        "channel_order": "rgb",
        "scale": "0-1",
    }


def weights_preprocessing(weights) -> Dict[str, Any]:
    """The preprocessing of a torchvision weights entry, from its own transforms()."""
    t = weights.transforms()
    if type(t).__name__ != "ImageClassification":
        raise ExportError(f"{weights}: unexpected transforms {type(t).__name__}")
    if len(t.resize_size) != 1 or len(t.crop_size) != 1:
        raise ExportError(f"{weights}: non-square resize/crop {t.resize_size}/{t.crop_size}")
    interpolation = t.interpolation.value
    if interpolation not in ("bilinear", "bicubic"):
        raise ExportError(f"{weights}: unsupported interpolation '{interpolation}'")
    return preprocessing(f"torchvision:{weights}", t.resize_size[0], t.crop_size[0],
                         interpolation, t.mean, t.std)


def resolve_weights(arch: str, tag: Optional[str]):
    """The torchvision weights entry `tag` of `arch` (DEFAULT when None); lists valid tags."""
    enum = torchvision.models.get_model_weights(arch)
    valid = [w.name for w in enum]
    if tag is None or tag == "DEFAULT":
        return enum.DEFAULT
    if tag not in valid:
        raise ExportError(f"--weights-tag '{tag}' is not a weights tag of {arch}; "
                          f"valid: DEFAULT, {', '.join(valid)}")
    return enum[tag]


# ------------------------------------------------------------------------------- state dicts
def read_checkpoint(path: str) -> Any:
    """Loads a checkpoint file as it is (torch.load on the CPU); one line when it cannot."""
    try:
        return torch.load(path, map_location="cpu")
    except Exception as e:  # noqa: BLE001 - reported as one line
        raise ExportError(f"--state-dict {path}: cannot read it as a PyTorch checkpoint "
                          f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})")


def read_state_dict(path: str) -> Dict[str, torch.Tensor]:
    """Loads a checkpoint: a state dict, or {'state_dict': ...} / {'model': ...} holding one;
    strips a DataParallel `module.` prefix."""
    return unwrap_state_dict(read_checkpoint(path), path)


def unwrap_state_dict(obj: Any, path: str) -> Dict[str, torch.Tensor]:
    if isinstance(obj, nn.Module):
        obj = obj.state_dict()
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(obj, dict) and key in obj and isinstance(obj[key], dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ExportError(f"--state-dict {path}: not a state dict (a dict of tensors, or "
                          f"{{'state_dict': ...}})")
    if obj and all(k.startswith("module.") for k in obj):
        obj = {k[len("module."):]: v for k, v in obj.items()}
    return dict(obj)


def _short_list(keys: List[str], limit: int = 12) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f", ... ({len(keys) - limit} more)" if len(keys) > limit else "")


def load_checked(model: nn.Module, sd: Dict[str, torch.Tensor], source: str, arch: str) -> None:
    """Loads `sd` into `model`; missing/unexpected keys or shape mismatches are one ExportError."""
    expected = model.state_dict()
    sd = dict(sd)
    for k in expected:  # checkpoints from PyTorch < 0.4.1 have no BatchNorm counters
        if k not in sd and k.endswith("num_batches_tracked"):
            sd[k] = torch.zeros_like(expected[k])
    missing = [k for k in expected if k not in sd]
    unexpected = [k for k in sd if k not in expected]
    mismatched = [f"{k} (file {list(sd[k].shape)}, model {list(expected[k].shape)})"
                  for k in expected if k in sd and sd[k].shape != expected[k].shape]
    problems = []
    if missing:
        problems.append(f"missing keys: {_short_list(missing)}")
    if unexpected:
        problems.append(f"unexpected keys: {_short_list(unexpected)}")
    if mismatched:
        problems.append(f"shape mismatches: {_short_list(mismatched)}")
    if problems:
        raise ExportError(f"{source} does not fit {arch}: " + "; ".join(problems))
    model.load_state_dict(sd, strict=True)


def _classifier_outputs(arch: str, sd: Dict[str, torch.Tensor]) -> Optional[int]:
    """The number of classes of a checkpoint: the output size of the layer that has 1000 outputs
    in torchvision's model (fc, classifier.N, heads.head, ...), when the file has that key."""
    with _quiet():
        reference = torchvision.models.get_model(arch, weights=None)
    keys = [k for k, v in reference.state_dict().items()
            if k.endswith("weight") and v.dim() >= 1 and v.shape[0] == 1000]
    for key in reversed(keys):
        if key in sd:
            return int(sd[key].shape[0])
    return None


def build_torchvision(arch: str, sd: Optional[Dict[str, torch.Tensor]], weights,
                      source: str) -> nn.Module:
    """torchvision's model `arch`; with `sd`, built as torchvision builds it for `weights` (image
    size, transform_input, aux heads) with the checkpoint's number of classes, then loaded."""
    if sd is None:
        with _quiet():
            return torchvision.models.get_model(arch, weights=None)
    kwargs: Dict[str, Any] = {}
    classes = _classifier_outputs(arch, sd)
    if classes is not None:
        kwargs["num_classes"] = classes
    aux_prefix = {"googlenet": ("aux1.", "aux2."), "inception_v3": ("AuxLogits.",)}.get(arch)
    has_aux = False
    if aux_prefix:
        has_aux = any(k.startswith(aux_prefix) for k in sd)
        kwargs.update(transform_input=True, aux_logits=has_aux, init_weights=False)
    if arch.startswith("vit_"):
        kwargs["image_size"] = weights.meta["min_size"][0]
    if arch.startswith("maxvit"):
        kwargs["input_size"] = weights.meta["min_size"]
    with _quiet():
        model = torchvision.models.get_model(arch, weights=None, **kwargs)
    load_checked(model, sd, source, arch)
    if has_aux:  # torchvision drops the auxiliary heads of its pretrained inference models
        model.aux_logits = False
        if arch == "googlenet":
            model.aux1 = None
            model.aux2 = None
        else:
            model.AuxLogits = None
    return model


@contextlib.contextmanager
def _quiet():
    """Silences torchvision's warnings and download progress messages."""
    with sources.quiet():
        yield


def download(url: str, arch: str, what: str, tag_hint: str, file_name: Optional[str] = None,
             command: Optional[str] = None) -> Any:
    """Downloads (or takes from torch.hub's cache, under `file_name` if given) a checkpoint; one
    clear line when offline, naming the URL and the --state-dict command to use instead."""
    try:
        with _quiet(), contextlib.redirect_stdout(io.StringIO()):  # "Downloading: ..." on stdout
            return torch.hub.load_state_dict_from_url(url, map_location="cpu", progress=False,
                                                      file_name=file_name)
    except Exception as e:  # noqa: BLE001 - any network or file failure becomes one line
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        name = url.rstrip("/").rsplit("/", 1)[-1]
        if name in ("", "download"):  # OSF links: the cache name (THINGSvision's) instead
            name = file_name or "checkpoint.pth"
        command = command or f"--arch {arch}"
        raise ExportError(
            f"downloading the pretrained weights of {arch} ({what}) failed ({reason}); "
            f"get {url} on a machine with network access and run: export.py {command} "
            f"--state-dict {name}{tag_hint} --out DIR")


# ------------------------------------------------------------------------------- the model
class Built:
    """An eager model and what the sidecar says about it."""

    def __init__(self, model: nn.Module, weights: str, weights_tag: Optional[str],
                 seed: Optional[int], prep: Dict[str, Any], entry_method: str = "forward"):
        self.model = model
        self.weights = weights
        self.weights_tag = weights_tag
        self.seed = seed
        self.preprocessing = prep
        self.entry_method = entry_method
        self.extra: Dict[str, Any] = {}
        # set for --source models (models/sources.py); None: derived from the --arch name
        self.family: Optional[str] = None
        self.methods: Optional[List[str]] = None
        self.suggested: Optional[List[str]] = None
        self.batch_dim_hint: Optional[Dict[str, int]] = None
        self.token_mode: Optional[str] = None
        self.trace_reason: Optional[str] = None   # trace first (export_note says why)


def build(arch: str, weights: str, seed: int, state_dict_file: Optional[str],
          weights_tag: Optional[str]) -> Built:
    """Builds the eager model `arch` with random, pretrained or user weights, in eval mode."""
    fam = family(arch)
    torch.manual_seed(seed)  # random weights (and any init before loading) are reproducible
    if weights == "random":
        if weights_tag is not None:
            raise ExportError("--weights-tag applies to pretrained weights or --state-dict only")
        if fam == "torchvision":
            model = build_torchvision(arch, None, None, "")
            prep = thingsvision_preprocessing()
        elif fam == "cornet":
            model = cornet.build(arch)
            prep = thingsvision_preprocessing()
        else:
            model = clip_standin.build(arch)
            prep = clip_preprocessing()
        built = Built(model, "random", None, seed,
                      prep, "encode_image" if fam == "clip" else "forward")
    elif fam == "clip":
        raise ExportError(f"{arch} is a random-weights stand-in for tests; OpenAI's published CLIP "
                          f"checkpoints are TorchScript already: load them directly "
                          f"(entry method encode_image)")
    elif fam == "cornet":
        if weights_tag is not None:
            raise ExportError("--weights-tag applies to torchvision architectures only")
        if state_dict_file:
            sd, source = read_state_dict(state_dict_file), f"--state-dict {state_dict_file}"
        else:
            url = cornet.CHECKPOINT_URLS[arch]
            sd = unwrap_state_dict(download(url, arch, "official CORnet checkpoint", ""), url)
            source = url
        model = cornet.build(arch)
        load_checked(model, sd, source, arch)
        built = Built(model, "state_dict" if state_dict_file else "pretrained", None, None,
                      thingsvision_preprocessing())
    else:
        enum_entry = resolve_weights(arch, weights_tag)
        if state_dict_file:
            sd, source = read_state_dict(state_dict_file), f"--state-dict {state_dict_file}"
        else:
            raw = download(enum_entry.url, arch, str(enum_entry),
                           f" --weights-tag {enum_entry.name}")
            sd, source = unwrap_state_dict(raw, enum_entry.url), enum_entry.url
        model = build_torchvision(arch, sd, enum_entry, source)
        built = Built(model, "state_dict" if state_dict_file else "pretrained", enum_entry.name,
                      None, weights_preprocessing(enum_entry))
    if state_dict_file:
        built.extra["state_dict_file"] = os.path.basename(state_dict_file)
        built.extra["state_dict_sha256"] = sha256_file(state_dict_file)
    built.model.eval()
    return built


def example_input(built: Built, batch: int = 1, size: Optional[int] = None) -> torch.Tensor:
    prep = built.preprocessing
    height = size or prep["crop_height"] or prep.get("resize_height") or 224
    width = size or prep["crop_width"] or prep.get("resize_width") or height
    return torch.randn(batch, 3, height, width)


def is_image_text(built: Built) -> bool:
    """An image-text model (CLIP, open_clip): encode_image takes the images, encode_text the tokens."""
    return built.entry_method == "encode_image" and "context_length" in built.extra


def to_torchscript(built: Built) -> Tuple[torch.jit.ScriptModule, str, Optional[str]]:
    """Scripts the model; traces it (with a crop-sized example) only where scripting fails, or
    first where `built.trace_reason` says why a scripted graph would hide module calls."""
    if built.trace_reason and is_image_text(built):
        try:
            return trace_image_text(built, None)
        except Exception as e:  # noqa: BLE001 - recorded, then scripted
            reason = (str(e).strip().splitlines() or [type(e).__name__])[0]
        built.extra["export_note"] = f"scripted: tracing failed ({reason})"
    elif built.trace_reason and built.entry_method == "forward":
        try:
            with _quiet(), torch.no_grad():
                traced = torch.jit.trace(built.model, example_input(built), check_trace=False)
            with _quiet(), torch.no_grad():  # the trace must generalise over the batch size
                x = example_input(built, batch=3)
                ref, got = first_tensor(built.model(x)), first_tensor(traced(x))
            if ref.shape == got.shape and (ref - got).abs().max() <= 1e-4 * ref.abs().max():
                return traced, "trace", built.trace_reason
            reason = f"the trace did not generalise to batch size 3"
        except Exception as e:  # noqa: BLE001 - recorded, then scripted
            reason = (str(e).strip().splitlines() or [type(e).__name__])[0]
        built.extra["export_note"] = f"scripted: tracing failed ({reason})"
    try:
        with _quiet():
            scripted = torch.jit.script(built.model)
        missing = [m for m in (built.methods or [built.entry_method]) if not hasattr(scripted, m)]
        if not missing:
            return scripted, "script", None
        # scripting compiles forward and exported methods only (CoCa's encode_image is neither)
        reason = f"the scripted module has no {', '.join(missing)}"
    except Exception as e:  # noqa: BLE001 - recorded, then traced
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0]
    if is_image_text(built):
        return trace_image_text(built, reason)
    if built.entry_method != "forward":
        raise ExportError(f"scripting failed ({reason}) and only forward can be traced")
    with _quiet(), torch.no_grad():
        traced = torch.jit.trace(built.model, example_input(built), check_trace=False)
    return traced, "trace", f"scripting failed: {reason}"


def trace_image_text(built: Built, reason: Optional[str]) -> Tuple[torch.jit.ScriptModule, str, str]:
    """Traces an image-text model's encode_image and encode_text (no forward), checked at batch
    size 3 against the eager methods; `reason`: why scripting failed (None: traced first, for
    `built.trace_reason`)."""
    why = f"scripting failed ({reason})" if reason else "tracing first"
    tokens = torch.zeros(1, built.extra["context_length"], dtype=torch.long)
    tokens[0, :3] = torch.tensor([1, 2, 3])
    with _quiet(), torch.no_grad():
        traced = torch.jit.trace_module(built.model, {"encode_image": example_input(built),
                                                      "encode_text": tokens}, check_trace=False)
        image = example_input(built, batch=3)
        text = tokens.repeat(3, 1)
        text[1, 3] = 4
        for method, x in (("encode_image", image), ("encode_text", text)):
            ref = first_tensor(getattr(built.model, method)(x))
            got = first_tensor(getattr(traced, method)(x))
            if ref.shape != got.shape or (ref - got).abs().max() > 1e-4 * ref.abs().max():
                raise ExportError(f"{why}: the traced {method} does not generalise to batch size 3")
    built.methods = ["encode_image", "encode_text"]
    note = f"scripting failed: {reason}" if reason else built.trace_reason
    return traced, "trace", f"{note}; encode_image and encode_text traced"


# ------------------------------------------------------------------------------- sidecar
_SUGGESTED = [
    # (architecture prefix, candidate modules); names that do not exist are dropped.
    ("alexnet", ["features", "classifier.5"]),
    ("vgg", ["features", "classifier.4"]),
    ("resnet", ["layer1", "layer4", "avgpool"]),
    ("resnext", ["layer1", "layer4", "avgpool"]),
    ("wide_resnet", ["layer1", "layer4", "avgpool"]),
    ("regnet", ["trunk_output.block1", "trunk_output.block4", "avgpool"]),
    ("densenet", ["features.denseblock1", "features.norm5"]),
    ("googlenet", ["inception3a", "inception5b", "avgpool"]),
    ("inception", ["Mixed_5b", "Mixed_7c", "avgpool"]),
    ("squeezenet", ["features.3", "features", "classifier"]),
    ("shufflenet", ["stage2", "stage4", "conv5"]),
    ("mobilenet_v2", ["features.1", "features"]),
    ("mobilenet_v3", ["features.1", "features", "avgpool", "classifier.1"]),
    ("mnasnet", ["layers.8", "layers"]),
    ("efficientnet", ["features.1", "features", "avgpool"]),
    ("convnext", ["features.1", "features", "avgpool"]),
    ("swin", ["features.1", "features", "norm", "avgpool"]),
    ("maxvit", ["blocks.0", "blocks", "classifier.4"]),
    ("cornet", ["V1.output", "V2.output", "V4.output", "IT.output", "decoder.avgpool"]),
    ("clip_rn50", ["visual.layer1", "visual.layer4", "visual"]),
]


def suggested_modules(arch: str, model: nn.Module) -> List[str]:
    names = [n for n, _ in model.named_modules() if n]
    present = set(names)
    if arch.startswith("vit_"):
        layers = [n for n in names if n.startswith("encoder.layers.encoder_layer_")
                  and n.count(".") == 2]
        return [layers[0], layers[-1], "encoder.ln"]
    if arch.startswith("clip_vit"):
        blocks = [n for n in names if n.startswith("visual.transformer.resblocks.")
                  and n.count(".") == 3]
        return [blocks[0], blocks[-1], "visual"]
    for prefix, candidates in _SUGGESTED:
        if arch.startswith(prefix):
            found = [c for c in candidates if c in present]
            if found:
                return found
    children = [n for n, _ in model.named_children()]
    return children[:1] + children[-2:-1]


def sha256_file(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def sidecar(arch: str, built: Built, pt_path: str, method: str, note: Optional[str],
            fmt: str = "torchscript") -> Dict:
    fam = built.family or family(arch)
    batch_dim_hint = built.batch_dim_hint
    token_mode = built.token_mode
    if fam == "clip":
        # OpenAI's transformers are sequence-first: (L, N, D) below these modules.
        batch_dim_hint = {"visual.transformer": 1, "transformer": 1}
    # token_mode stays null unless --token-extraction sets it: tv-extract applies a sidecar's
    # token_mode by default, and THINGSvision's default for (B, T, D) outputs is to flatten them.
    doc: Dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "architecture": arch,
        "family": fam,
        "weights": built.weights,
        "weights_tag": built.weights_tag,
        "seed": built.seed,
        "torch_version": torch.__version__.split("+")[0],
        "torchvision_version": torchvision.__version__.split("+")[0],
        "sha256": sha256_file(pt_path),
        "file": os.path.basename(pt_path),
        "format": fmt,
        "export_method": method,
        "entry_method": built.entry_method,
        "methods": built.methods or (["encode_image", "encode_text", "forward"] if fam == "clip"
                                     else ["forward"]),
        "preprocessing": built.preprocessing,
        "suggested_modules": built.suggested or suggested_modules(arch, built.model),
        "batch_dim_hint": batch_dim_hint,
        "token_mode": token_mode,
        "module_tree": "module_tree.txt" if fmt == "torchscript" else None,
    }
    if fam == "clip":
        doc["context_length"] = clip_standin.CONTEXT_LENGTH
        doc["vocab_size"] = clip_standin.VOCAB_SIZE
    if note:
        doc["export_note"] = note
    doc.update(built.extra)
    return doc


def _write_atomic(path: str, write) -> None:
    tmp = path + ".tmp"
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def export(arch: str, weights: str, seed: int, out_dir: str, state_dict_file: Optional[str] = None,
           weights_tag: Optional[str] = None, check: bool = False,
           fmt: str = "torchscript") -> Dict[str, Any]:
    """Writes out_dir/arch.pt (or .onnx) and out_dir/arch.json; returns the sidecar."""
    built = build(arch, weights, seed, state_dict_file, weights_tag)
    return write_export(arch, built, out_dir, check, fmt)


def write_export(arch: str, built: Built, out_dir: str, check: bool, fmt: str) -> Dict[str, Any]:
    """Writes out_dir/arch.pt (or .onnx) and its sidecar out_dir/arch.json for `built`."""
    if fmt == "onnx":
        return export_onnx(arch, built, out_dir)
    scripted, method, note = to_torchscript(built)
    if check:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            check_outputs(built, scripted)
    os.makedirs(out_dir, exist_ok=True)
    pt_path = os.path.join(out_dir, arch + ".pt")
    extra = {"module_tree.txt": repr(built.model)}
    _write_atomic(pt_path, lambda p: torch.jit.save(scripted, p, _extra_files=extra))
    doc = sidecar(arch, built, pt_path, method, note)
    _write_json(os.path.join(out_dir, arch + ".json"), doc)
    return doc


# ------------------------------------------------------------------------------- --source/--model
TOKEN_MODES = {"cls_token": "cls", "avg_pool": "avg", "cls_token+avg_pool": "cls+avg"}


def list_source(source: str) -> List[str]:
    """The names `--source source` exports here (what --list --source prints)."""
    if source == "torchvision":
        return torchvision_architectures()
    if source == "timm":
        return sources.timm_models()
    if source == "ssl":
        return sources.ssl_models()
    lines = sources.custom_models()
    try:
        pairs = sources.openclip_pairs()
        import open_clip
        # every architecture (random weights), then every pretrained tag
        lines += [f"OpenCLIP --variant {v}" for v in open_clip.list_models()]
        lines += [f"OpenCLIP --variant {v} --dataset {d}" for v, d in pairs]
    except sources.SourceError:
        lines.append("OpenCLIP (variants: install open-clip-torch, scripts/setup-venv.sh)")
    return lines


def build_source(source: str, name: str, params: Dict[str, Any], weights: str, seed: int,
                 state_dict_file: Optional[str]) -> Tuple[Built, str]:
    """Builds THINGSvision's (source, model_name, model_parameters) model; returns it and the
    output file stem."""
    if source not in sources.SOURCES:
        raise ExportError(f"--source '{source}' is not one of {', '.join(sources.SOURCES)}")
    if source == "torchvision" or (source == "custom" and name in sources.CORNET):
        arch = name if source == "torchvision" else sources.CORNET[name]
        if arch not in all_architectures():
            raise ExportError(f"--model '{name}' is not a torchvision model (see --list --source "
                              f"torchvision)")
        built = build(arch, weights, seed, state_dict_file, params.get("weights"))
        built.extra.update({"source": source, "model_name": name})
        return built, arch
    torch.manual_seed(seed)
    command = f"--source {source} --model {name}" + "".join(
        f" --{k} {v}" for k, v in params.items() if k in ("variant", "dataset"))

    def fetch(url: str, what: str) -> Any:
        file_name = (f"thingsvision_ssl_v0_{what}.pth" if source == "ssl" else
                     what if what in sources.ECOSET else None)   # THINGSvision's cache names
        return download(url, what, "published checkpoint", "", file_name, command)

    def checked(model: nn.Module, sd: Dict[str, torch.Tensor], where: Optional[str] = None):
        load_checked(model, sd, where or f"--state-dict {state_dict_file}", name)

    sd_file = state_dict_file
    if weights == "random" and sd_file:
        raise ExportError("--state-dict cannot be combined with --weights random")
    try:
        if source == "timm":
            sd = read_state_dict(sd_file) if sd_file else None
            sm = sources.build_timm(name, weights, sd, checked)
        elif source == "ssl":
            sm = sources.build_ssl(name, weights, sd_file, read_checkpoint, fetch, checked)
        else:
            def read(path: str) -> Dict[str, torch.Tensor]:
                return read_state_dict(path)
            sm = sources.build_custom(name, params, weights, sd_file, read, fetch, checked)
    except sources.SourceError as e:
        raise ExportError(str(e))
    kind = "state_dict" if sd_file else weights
    built = Built(sm.model, kind, sm.weights_tag, seed if kind == "random" else None,
                  sm.preprocessing, sm.entry_method)
    built.family = sm.family
    built.methods = sm.methods
    built.suggested = existing_modules(sm.model, sm.suggested)
    built.batch_dim_hint = sm.batch_dim_hint
    built.trace_reason = sm.trace_reason
    built.extra.update({"source": source, "model_name": name})
    model_parameters = {k: v for k, v in params.items() if k in ("variant", "dataset")}
    model_parameters.update(sm.sidecar.pop("model_parameters", {}))
    if model_parameters:
        built.extra["model_parameters"] = model_parameters
    built.extra.update(sm.sidecar)
    if sd_file:
        built.extra["state_dict_file"] = os.path.basename(sd_file)
        built.extra["state_dict_sha256"] = sha256_file(sd_file)
    return built, sm.stem


def existing_modules(model: nn.Module, names: List[str]) -> List[str]:
    present = {n for n, _ in model.named_modules() if n}
    found = [n for n in names if n in present]
    if found:
        return found
    children = sources.existing(model, [n for n, _ in model.named_children()])  # no nn.Identity
    return children[:1] + children[-1:]


def export_source(source: str, name: str, params: Dict[str, Any], weights: str, seed: int,
                  out_dir: str, state_dict_file: Optional[str] = None, check: bool = False,
                  token_mode: Optional[str] = None, fmt: str = "torchscript") -> Dict[str, Any]:
    """Writes out_dir/STEM.pt and out_dir/STEM.json for THINGSvision's (source, name, params);
    returns the sidecar."""
    built, stem = build_source(source, name, params, weights, seed, state_dict_file)
    if token_mode is not None:
        if token_mode not in TOKEN_MODES:
            raise ExportError(f"--token-extraction '{token_mode}' is not one of "
                              f"{', '.join(TOKEN_MODES)}")
        if "token_layout" not in built.extra:
            raise ExportError(f"--token-extraction: {name} is not a token model (no CLS token)")
        built.token_mode = TOKEN_MODES[token_mode]
    return write_export(stem, built, out_dir, check, fmt)


ONNX_OPSETS = (13, 14, 17)
ONNX_OPSET = ONNX_OPSETS[0]


def onnx_export(model: nn.Module, example: torch.Tensor, f, **kwargs) -> None:
    """torch.onnx.export with the TorchScript-based exporter on every torch (>= 2.9 defaults to the
    dynamo exporter, which needs onnxscript and names nodes differently)."""
    if "dynamo" in inspect.signature(torch.onnx.export).parameters:
        kwargs.setdefault("dynamo", False)
    torch.onnx.export(model, example, f, **kwargs)


class _EntryMethod(nn.Module):
    """Exposes model.<entry_method> as forward (CLIP's encode_image), for ONNX export."""

    def __init__(self, model: nn.Module, method: str):
        super().__init__()
        self.model = model
        self.method = method

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return getattr(self.model, self.method)(x)


def remove_identity_nodes(graph) -> int:
    """Removes Identity nodes (torch 1.13 deduplicates equal initializers into them, which OpenCV
    4.6 cannot parse) by pointing their consumers at their inputs; returns how many."""
    graph_outputs = {o.name for o in graph.output}
    rename = {}
    keep = []
    for node in graph.node:
        if node.op_type == "Identity" and node.output[0] not in graph_outputs:
            rename[node.output[0]] = node.input[0]
        else:
            keep.append(node)
    for node in keep:
        for i, name in enumerate(node.input):
            while name in rename:
                name = rename[name]
            node.input[i] = name
    del graph.node[:]
    graph.node.extend(keep)
    return len(rename)


def export_onnx(arch: str, built: Built, out_dir: str) -> Dict[str, Any]:
    """Writes out_dir/arch.onnx (input "input", output "output", dynamic batch; BatchNorm kept as
    nodes, not folded into convolutions, so that conv outputs are the module's) and the sidecar."""
    import onnx  # python3-onnx; only this format needs it
    model = built.model
    if built.entry_method != "forward":
        model = _EntryMethod(model, built.entry_method).eval()
    kwargs = dict(input_names=["input"], output_names=["output"],
                  dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
                  do_constant_folding=False, training=torch.onnx.TrainingMode.PRESERVE)
    opset, last_error = None, None
    # Opset 13 where it can express the model; torch 2.x's attention (scaled_dot_product_attention)
    # needs opset 14.
    for candidate in ONNX_OPSETS:
        buffer = io.BytesIO()
        try:
            with _quiet(), torch.no_grad():
                onnx_export(model, example_input(built), buffer, opset_version=candidate, **kwargs)
            opset = candidate
            break
        except Exception as e:  # noqa: BLE001 - an op without a symbolic at this opset: try the next
            last_error = e
    if opset is None:
        raise ExportError(f"cannot export {arch} to ONNX at opset {'/'.join(map(str, ONNX_OPSETS))}: "
                          f"{str(last_error).splitlines()[0]}")
    proto = onnx.load_from_string(buffer.getvalue())
    removed = remove_identity_nodes(proto.graph)
    onnx.checker.check_model(proto)
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, arch + ".onnx")
    _write_atomic(path, lambda p: onnx.save(proto, p))
    doc = sidecar(arch, built, path, "onnx", None, fmt="onnx")
    doc.update({"onnx_opset": opset, "input_names": ["input"], "output_names": ["output"],
                "onnx_identity_nodes_removed": removed})
    if built.entry_method != "forward":
        doc["entry_method"] = "forward"
        doc["methods"] = ["forward"]
        doc["onnx_note"] = f"the graph is the model's {built.entry_method}"
    _write_json(os.path.join(out_dir, arch + ".json"), doc)
    return doc


def _write_json(path: str, doc: Dict[str, Any]) -> None:
    text = json.dumps(doc, indent=2) + "\n"

    def write(p: str) -> None:
        with open(p, "w") as f:
            f.write(text)
    _write_atomic(path, write)


def first_tensor(out: Any) -> torch.Tensor:
    """The first tensor of a model output (scripted googlenet/inception return a tuple)."""
    while isinstance(out, (tuple, list)):
        out = out[0]
    return out


def check_outputs(built: Built, scripted) -> None:
    """Runs eager and TorchScript models on one random input; they must agree to 1e-5 of max."""
    x = example_input(built, batch=1)
    with torch.no_grad():
        fn = getattr(built.model, built.entry_method)
        ref = first_tensor(fn(x))
        got = first_tensor(getattr(scripted, built.entry_method)(x))
    diff = (ref - got).abs().max().item()
    scale = max(ref.abs().max().item(), 1e-12)
    if diff > 1e-5 * scale:
        raise ExportError(f"TorchScript output differs from eager: max |diff| {diff:.3g} "
                          f"(max |ref| {scale:.3g})")


# ------------------------------------------------------------------------------- command line
def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="export.py", description="Export a vision model as TorchScript + JSON sidecar.")
    parser.add_argument("--list", action="store_true",
                        help="print every exportable architecture (with --source: that source's "
                             "model names)")
    parser.add_argument("--arch", help="architecture name (see --list)")
    parser.add_argument("--source", choices=sources.SOURCES,
                        help="THINGSvision's source of --model: torchvision, timm, ssl or custom")
    parser.add_argument("--model", metavar="NAME",
                        help="THINGSvision's model_name within --source (see --list --source S)")
    parser.add_argument("--variant", help="model_parameters 'variant' (OpenCLIP: ViT-B-32-quickgelu, "
                                          "clip: ViT-B/32 by default)")
    parser.add_argument("--dataset", help="model_parameters 'dataset' (OpenCLIP's pretrained tag; "
                                          "default laion400m_e32 with the default variant)")
    parser.add_argument("--token-extraction", choices=sorted(TOKEN_MODES),
                        help="model_parameters 'token_extraction' of a token model: written to the "
                             "sidecar's token_mode, which tv-extract applies by default")
    parser.add_argument("--weights", choices=["pretrained", "random"],
                        help="pretrained (download or torch.hub cache) or random (seeded)")
    parser.add_argument("--pretrained", action="store_true", help="the same as --weights pretrained")
    parser.add_argument("--seed", type=int, default=0, help="seed of random weights (default 0)")
    parser.add_argument("--state-dict", metavar="FILE",
                        help="load weights from a checkpoint (a `module.` prefix is stripped; ssl: "
                             "the published layouts are converted)")
    parser.add_argument("--weights-tag", metavar="TAG",
                        help="torchvision weights whose preprocessing applies (default DEFAULT)")
    parser.add_argument("--out", metavar="DIR", help="output directory")
    parser.add_argument("--format", choices=["torchscript", "onnx"], default="torchscript",
                        help="torchscript (NAME.pt, default) or onnx (NAME.onnx, opset 13; 14 or 17 where 13 cannot express the model)")
    parser.add_argument("--check", action="store_true",
                        help="compare TorchScript and eager outputs on a random input")
    args = parser.parse_args(argv)
    if args.list:
        try:
            print("\n".join(list_source(args.source) if args.source else all_architectures()))
        except sources.SourceError as e:
            print(f"export.py: error: {e}", file=sys.stderr)
            return 1
        return 0
    if args.arch and (args.source or args.model):
        parser.error("--arch cannot be combined with --source/--model")
    if bool(args.source) != bool(args.model):
        parser.error("--source and --model go together (THINGSvision's source and model_name)")
    if not (args.arch or args.model) or not args.out:
        parser.error("--arch (or --source and --model) and --out are required (or --list)")
    if args.arch and (args.variant or args.dataset or args.token_extraction):
        parser.error("--variant, --dataset and --token-extraction apply to --source/--model")
    if args.pretrained:
        if args.weights == "random":
            parser.error("--pretrained cannot be combined with --weights random")
        args.weights = "pretrained"
    weights = args.weights
    if args.state_dict:
        if weights == "random":
            parser.error("--state-dict loads weights: it cannot be combined with --weights random")
        weights = "state_dict"
    elif weights is None:
        parser.error("--weights pretrained|random (or --pretrained, or --state-dict FILE) is required")
    if weights == "pretrained" and args.source in ("timm", "custom"):
        sources.hub_offline_when_unreachable()
    try:
        if args.model:
            params = {k: v for k, v in (("variant", args.variant), ("dataset", args.dataset),
                                        ("weights", args.weights_tag)) if v is not None}
            doc = export_source(args.source, args.model, params,
                                "pretrained" if weights == "state_dict" else weights, args.seed,
                                args.out, args.state_dict, args.check, args.token_extraction,
                                args.format)
        else:
            doc = export(args.arch, "pretrained" if weights == "state_dict" else weights, args.seed,
                         args.out, args.state_dict, args.weights_tag, args.check, args.format)
    except ExportError as e:
        print(f"export.py: error: {e}", file=sys.stderr)
        return 1
    print(f"{os.path.join(args.out, doc['file'])} ({doc['export_method']}, {doc['weights']})")
    return 0


def run_request(line: str) -> Tuple[int, str]:
    """main() on one request line (shell-quoted arguments): its return code and all it printed (a
    traceback for an unexpected exception)."""
    import io
    import shlex
    import traceback
    from contextlib import redirect_stderr, redirect_stdout

    captured = io.StringIO()
    try:
        with redirect_stdout(captured), redirect_stderr(captured):
            rc = main(shlex.split(line))
    except SystemExit as e:  # argparse's errors
        rc = e.code if isinstance(e.code, int) else 2
    except Exception:  # noqa: BLE001 - reported as the command line reports it
        traceback.print_exc(file=captured)
        rc = 1
    return rc, captured.getvalue()


def run_request_in_child(line: str) -> Tuple[int, str]:
    """run_request in a forked child, so that all the model's memory goes back to the system when it
    ends (a process keeps what glibc's allocator holds: GBs after a large model). The child dies with
    this process (a sweep's timeout kills this one); a child killed by a signal (the kernel's
    out-of-memory killer sends SIGKILL) is reported as such."""
    import ctypes
    import signal

    read_end, write_end = os.pipe()
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:  # the child: run, write "RC\nTEXT" to the pipe, exit without Python's clean-up
        os.close(read_end)
        try:
            ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
            if os.getppid() != parent:  # the parent died before prctl: nobody waits for this one
                os._exit(1)
            rc, text = run_request(line)
            with os.fdopen(write_end, "w") as f:
                f.write(f"{rc}\n{text}")
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as f:
        data = f.read()
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
        hint = (f": out of memory on this machine's {gib:.0f} GiB, if nobody killed it"
                if sig == signal.SIGKILL else "")
        return 128 + sig, f"{data.partition(chr(10))[2]}the export was killed ({signal.Signals(sig).name}{hint})\n"
    rc, _, text = data.partition("\n")
    return (int(rc) if rc else 1), text


def serve(requests=sys.stdin, replies=sys.stdout) -> int:
    """Runs main() once per request line (its arguments, shell-quoted), each in a child forked from
    this one process, so that a sweep (scripts/export_all.sh) imports torch and timm once, not once
    per model, and every model's memory is freed after it. Each request gets one reply line
    "RC<TAB>LAST LINE OF ITS OUTPUT" (a traceback's last line for an unexpected exception);
    everything main() prints goes to stderr. Ends at end of input."""
    for line in requests:
        if not line.strip():
            continue
        rc, text = run_request_in_child(line)
        sys.stderr.write(text)
        sys.stderr.flush()
        last = next((t for t in reversed(text.splitlines()) if t.strip()), "")
        replies.write(f"{rc}\t{last}\n")
        replies.flush()
    return 0


if __name__ == "__main__":
    sys.exit(serve() if sys.argv[1:] == ["--serve"] else main())
