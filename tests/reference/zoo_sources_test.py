#!/usr/bin/env python3
"""tv-extract on THINGSvision's model sources (issue 18): models/export.py --source S --model N,
then tv-extract on the example images, against an independent reference computed here.

  zoo_sources_test.py WORK CASE       (TV_EXTRACT: the tv-extract binary; see CASES)

The reference never calls models/: it builds the model with the library THINGSvision uses (timm,
open_clip, torchvision) or an equivalent one (DINO/DINOv2/MAE ViTs: timm's ViT holding the same
tensors, DINOv2's position embeddings resized by the official formula), loads the TorchScript
archive's tensors (or the synthetic checkpoint's original ones), preprocesses with the library's
own eval transform on PIL images (timm.data.create_transform, open_clip's preprocess, THINGSvision's
default), and records forward-hook outputs (output[0] of a tuple, last call). Where THINGSvision
runs here (TV_THINGSVISION_PATH: the PYTHONPATH printed by scripts/setup-thingsvision.sh), its
get_extractor(...).extract_features with the same weights is a second reference (ssl checkpoints
reach it through a patched torch.hub.load_state_dict_from_url, so THINGSvision's own key
conversion runs on the synthetic published-layout file).

Exit 77 (skip, with the reason) where this platform cannot run the case: timm/open_clip missing
from this python, or a LibTorch older than 2.0 for archives of torch >= 2.0.
"""
import json
import os
import re
import subprocess
import sys
import types

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import zoo_common as zc  # noqa: E402

IMAGENET = ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
EXTENSIONS = re.compile(r"(.eps|.jpg|.JPG|.jpeg|.JPEG|.png|.PNG|.tif|.tiff)$")

# case -> (source, model, export options, modules, python packages needed)
CASES = {
    "timm_deit_tiny": ("timm", "deit_tiny_patch16_224", [], ["patch_embed.proj", "blocks.0", "norm", "head"], ["timm"]),
    "timm_deit_tokens": ("timm", "deit_tiny_patch16_224", ["--token-extraction", "cls_token+avg_pool"], ["blocks.11", "norm"], ["timm"]),
    "timm_eva02_tiny": ("timm", "eva02_tiny_patch14_224", [], ["blocks.0", "blocks.11", "fc_norm"], ["timm"]),
    "timm_resnet18": ("timm", "resnet18", [], ["conv1", "layer1", "layer4", "global_pool", "fc"], ["timm"]),
    "timm_convnext_atto": ("timm", "convnext_atto", [], ["stem", "stages.1", "head.global_pool"], ["timm"]),
    "timm_efficientnet_b0": ("timm", "efficientnet_b0", [], ["bn1", "blocks.3", "global_pool"], ["timm"]),
    # blocks.0 returns (pixel tokens, patch tokens); the first merges images and patches: (N·196, 16, 24)
    "timm_tnt_s_merged_rows": ("timm", "tnt_s_patch16_224", [], ["blocks.0", "norm"], ["timm"]),
    "timm_convnextv2_nano_squash": ("timm", "convnextv2_nano.fcmae_ft_in22k_in1k_384", [], ["stem", "stages.0", "stages.3"], ["timm"]),
    "ssl_simclr_rn50": ("ssl", "simclr-rn50", ["vissl"], ["layer1", "layer4", "avgpool"], []),
    "ssl_barlowtwins_rn50": ("ssl", "barlowtwins-rn50", ["plain"], ["layer2", "avgpool"], []),
    "ssl_dino_vit_small_p16": ("ssl", "dino-vit-small-p16", ["plain"], ["blocks.0", "blocks.11", "norm"], ["timm"]),
    "ssl_dinov2_vit_small_p14": ("ssl", "dinov2-vit-small-p14", ["plain"], ["blocks.0", "blocks.11", "norm"], ["timm"]),
    "ssl_mae_vit_base_p16": ("ssl", "mae-vit-base-p16", ["mae"], ["blocks.0", "norm"], ["timm"]),
    "custom_alexnet_ecoset": ("custom", "Alexnet_ecoset", ["plain"], ["features.3", "classifier.4", "classifier.6"], []),
    "custom_inception_ecoset": ("custom", "Inception_ecoset", ["plain"], ["Mixed_5b", "avgpool", "fc"], []),
    # weights from open_clip's state dict of the whole model (--state-dict: no download, no --dataset)
    "custom_openclip_vit_b_32": ("custom", "OpenCLIP", ["open_clip", "--variant", "ViT-B-32"], ["visual.conv1", "visual.transformer.resblocks.0", "visual"], ["open_clip"]),
    # a timm trunk (open_clip's TimmModel): traced, so that its blocks can be tapped
    "custom_openclip_vitamin_s": ("custom", "OpenCLIP", ["--variant", "ViTamin-S"], ["visual.trunk.blocks.0", "visual.trunk.blocks.13", "visual"], ["open_clip"]),
    # CoCa: its scripted module lacks encode_image (not exported), so export.py falls back to tracing
    "custom_openclip_coca_vit_b_32": ("custom", "OpenCLIP", ["--variant", "coca_ViT-B-32"], ["visual.transformer.resblocks.0", "visual"], ["open_clip"]),
    "custom_clip_rn50": ("custom", "clip", ["--variant", "RN50"], ["visual.layer1", "visual.attnpool", "visual"], ["open_clip"]),
    # a Hugging Face text tower (RoBERTa): the image tower alone, weights from a full checkpoint
    "custom_openclip_roberta_vit_b_32": ("custom", "OpenCLIP", ["open_clip", "--variant", "roberta-ViT-B-32"], ["visual.conv1", "visual.transformer.resblocks.11", "visual"], ["open_clip"]),
}
# open_clip variants with a Hugging Face text tower -> a variant with a native text tower and the
# same image tower (checked), whose open_clip model is the reference without transformers
HF_TEXT_TWIN = {"roberta-ViT-B-32": "ViT-B-32"}
# cases whose modules THINGSvision refuses (with this message): blocks.0 of TNT has N·196 rows, and
# THINGSvision 2.7.3 requires the batch size first; tv-extract gives each image its 196 rows.
THINGSVISION_REFUSES = {"timm_tnt_s_merged_rows": "does not match the batch size"}
PROMPTS = ["a photo of an apple", "a baboon", "Two butterflies on a flower.", "fish!"]


# Cases that exist for one export path: (export_method, a phrase of the sidecar's export_note).
EXPECTED_EXPORT = {
    "custom_openclip_coca_vit_b_32": ("trace", "the scripted module has no encode_image"),
}


def skip(reason):
    print(f"SKIP: {reason}")
    sys.exit(77)


def libtorch_major(tv_extract):
    out = subprocess.run([tv_extract, "--version"], capture_output=True, text=True).stdout
    m = re.search(r"LibTorch (\d+)\.", out)
    return int(m.group(1)) if m else 0


def image_paths():
    """THINGSvision's order of the example images (sorted names)."""
    root = os.path.join(zc.SOURCE_DIR, "examples", "images")
    names = sorted(n for n in os.listdir(root) if EXTENSIONS.search(n))
    return root, [os.path.join(root, n) for n in names]


def default_transform():
    from torchvision import transforms
    return transforms.Compose([transforms.Resize(256), transforms.CenterCrop(224),
                               transforms.ToTensor(), transforms.Normalize(*IMAGENET)])


def hooked_features(model, modules, batch, entry=None):
    """Forward-hook outputs of `modules` (THINGSvision's rule: output[0] of a tuple, clone, the
    last call wins) for one forward pass of `batch`."""
    named = dict(model.named_modules())
    acts = {}
    handles = []
    for name in modules:
        def hook(_m, _i, output, name=name):
            acts[name] = (output[0] if isinstance(output, tuple) else output).clone().detach()
        handles.append(named[name].register_forward_hook(hook))
    with torch.no_grad():
        (entry or model)(batch)
    for h in handles:
        h.remove()
    return acts


def archive_state(pt):
    return {k: v for k, v in torch.jit.load(pt, map_location="cpu").state_dict().items()}


def load_into(model, state):
    """Loads the tensors of `state` that `model`'s state dict has (a scripted archive also holds
    non-persistent buffers); every key of the model must be there."""
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    if missing:
        raise KeyError(f"reference model keys missing from the weights: {missing[:5]}")
    model.load_state_dict({k: state[k] for k in expected})
    return model


# ------------------------------------------------------------------------------ synthetic weights
def seeded_resnet50_trunk(seed):
    import torchvision
    torch.manual_seed(seed)
    model = torchvision.models.resnet50()
    model.fc = torch.nn.Identity()
    randomise_batchnorm(model)
    return model.state_dict()


def randomise_batchnorm(model):
    """Non-trivial BatchNorm statistics, as a trained file has."""
    g = torch.Generator().manual_seed(7)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)


def published_layout(sd, layout):
    """A checkpoint shaped like the published files of THINGSvision's ssl/custom models."""
    if layout == "vissl":  # VISSL model zoo: classy_state_dict/base_model/model/trunk, _feature_blocks.
        trunk = {"_feature_blocks." + k: v for k, v in sd.items()}
        heads = {"0.clf.0.weight": torch.zeros(128, 2048)}
        return {"phase_idx": 799, "iteration": 1000, "type": "checkpoint",
                "classy_state_dict": {"base_model": {"model": {"trunk": trunk, "heads": heads},
                                                     "meta": {}}, "loss": {}}}
    if layout == "mae":  # {'model': encoder tensors} (+ nothing else at 224)
        return {"model": dict(sd)}
    if layout == "open_clip":  # open_clip's state dict of the whole model (no attn_mask buffer)
        sd = {k: v for k, v in sd.items() if k != "attn_mask"}
        if "logit_scale" not in sd:  # an image tower alone: add a Hugging Face text tower's keys
            sd.update({"text.transformer.embeddings.word_embeddings.weight": torch.zeros(16, 768),
                       "text.transformer.encoder.layer.0.attention.self.query.weight": torch.zeros(768, 768),
                       "text.proj.weight": torch.zeros(512, 768), "logit_scale": torch.tensor(4.6052)})
        return sd
    return dict(sd)  # plain state dict (Barlow Twins, VICReg, DINO, DINOv2, Ecoset)


# ------------------------------------------------------------------------------ reference models
def timm_reference(name, state):
    import timm
    model = timm.create_model(name, pretrained=False).eval()
    load_into(model, state)
    cfg = timm.data.resolve_model_data_config(model)
    return model, timm.data.create_transform(**cfg, is_training=False)


def dinov2_official_pos_embed(pos_embed, size, patch=14, offset=0.1):
    """DINOv2's interpolate_pos_encoding (facebookresearch/dinov2, models/vision_transformer.py):
    bicubic with scale factor (w0 + 0.1) / M, no antialias."""
    cls, grid = pos_embed[:, :1], pos_embed[:, 1:]
    m, dim = int(round(grid.shape[1] ** 0.5)), grid.shape[-1]
    w0 = size // patch
    scale = float(w0 + offset) / m
    grid = torch.nn.functional.interpolate(grid.reshape(1, m, m, dim).permute(0, 3, 1, 2),
                                           scale_factor=(scale, scale), mode="bicubic",
                                           antialias=False)
    return torch.cat((cls, grid.permute(0, 2, 3, 1).reshape(1, -1, dim)), dim=1)


def vit_reference(name, state):
    """timm's ViT with the same tensors: DINO/MAE (patch 16, LayerNorm eps 1e-6, qkv bias) and
    DINOv2 (layer scale; position embeddings resized to 224 as DINOv2 does)."""
    import timm
    state = dict(state)
    if name.startswith("dinov2"):
        state.pop("mask_token")
        state["pos_embed"] = dinov2_official_pos_embed(state["pos_embed"], 224)
        model = timm.create_model("vit_small_patch14_dinov2", img_size=224, num_classes=0,
                                  pretrained=False)
    elif name.startswith("dino"):
        model = timm.create_model("vit_small_patch16_224", num_classes=0, pretrained=False)
    else:
        model = timm.create_model("vit_base_patch16_224", num_classes=0, pretrained=False)
    load_into(model.eval(), state)
    return model, default_transform()


def openclip_reference(variant, state, quick_gelu):
    import open_clip
    if variant in HF_TEXT_TWIN:  # the twin's image tower, checked to be the same, with its weights
        cfg, twin = open_clip.get_model_config(variant), HF_TEXT_TWIN[variant]
        twin_cfg = open_clip.get_model_config(twin)
        zc.check(cfg["vision_cfg"] == twin_cfg["vision_cfg"] and cfg["embed_dim"] == twin_cfg["embed_dim"],
                 f"{twin}'s image tower is not {variant}'s")
        model, _, preprocess = open_clip.create_model_and_transforms(
            twin, force_quick_gelu=cfg.get("quick_gelu", False))
        load_into(model.visual.eval(), {k[len("visual."):]: v for k, v in state.items()
                                        if k.startswith("visual.")})
        return model.eval(), preprocess
    model, _, preprocess = open_clip.create_model_and_transforms(variant, force_quick_gelu=quick_gelu)
    load_into(model.eval(), state)
    return model, preprocess


# ------------------------------------------------------------------------------ THINGSvision
def thingsvision_features(source, name, params, modules, paths, state, checkpoint, out_dir):
    """THINGSvision's get_extractor + extract_features, with `state` (or, for ssl/Ecoset, the
    published-layout `checkpoint` served by a patched torch.hub) as weights; None if unavailable."""
    path = os.environ.get("TV_THINGSVISION_PATH")
    if not path:
        return None
    for mod in ("timm", "open_clip"):  # the venv's timm/open_clip, not THINGSvision's pinned copies
        try:
            __import__(mod)
        except ImportError:
            pass
    for p in reversed(path.split(os.pathsep)):
        sys.path.insert(0, p)
    if not hasattr(np, "AxisError"):  # THINGSvision 2.7.3 pins numpy < 2 and reads np.AxisError
        np.AxisError = np.exceptions.AxisError
    import_thingsvision()
    import thingsvision
    from thingsvision.utils.data import DataLoader, ImageDataset
    if checkpoint is not None:
        torch.hub.load_state_dict_from_url = lambda *a, **k: checkpoint
        import thingsvision.core.extraction.extractors as ex
        ex.load_state_dict_from_url = torch.hub.load_state_dict_from_url
    if name == "OpenCLIP":  # random initialisation instead of the download; the weights follow
        import open_clip
        create = open_clip.create_model_and_transforms

        def offline_create(*args, **kwargs):
            kwargs.pop("pretrained", None)
            return create(*args, **kwargs)
        open_clip.create_model_and_transforms = offline_create
    extractor = thingsvision.get_extractor(model_name=name, source=source, pretrained=False,
                                           device="cpu", model_parameters=params or None)
    if checkpoint is None:
        load_into(extractor.model, state)
    root = os.path.dirname(paths[0])
    dataset = ImageDataset(root=root, out_path=out_dir, backend=extractor.get_backend(),
                           transforms=extractor.get_transformations())
    batches = DataLoader(dataset=dataset, batch_size=3, backend=extractor.get_backend())
    out = {}
    for module in modules:
        out[module] = np.asarray(extractor.extract_features(batches=batches, module_name=module,
                                                            flatten_acts=False))
    return out


class _Stub(types.ModuleType):
    """A stand-in for a package THINGSvision imports for models not compared here."""

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return type(name, (), {})


def import_thingsvision():
    """Imports thingsvision; packages it imports only for other models (OpenAI's clip, which is
    not on PyPI, transformers, dreamsim, segment_anything, ...) become stubs, never the packages
    the compared models use."""
    real = ("torch", "torchvision", "timm", "open_clip", "numpy", "PIL", "thingsvision")
    for _ in range(20):
        try:
            import thingsvision.custom_models  # noqa: F401
            return
        except ModuleNotFoundError as e:
            name = e.name or ""
            if not name or name.split(".")[0] in real or name in sys.modules:
                raise
            parts = name.split(".")
            for i in range(1, len(parts) + 1):
                sys.modules.setdefault(".".join(parts[:i]), _Stub(".".join(parts[:i])))
            for key in [k for k in sys.modules if k.startswith("thingsvision")]:
                del sys.modules[key]


# ------------------------------------------------------------------------------ the test
def run(case):
    source, name, options, modules, needs = CASES[case]
    tv_extract = os.environ.get("TV_EXTRACT")
    if not tv_extract:
        zc.check(False, "TV_EXTRACT is not set")
        zc.finish()
    for package in needs:
        try:
            __import__(package)
        except ImportError:
            skip(f"{case} needs the Python package {package} (scripts/setup-venv.sh); this python "
                 f"({sys.executable}) lacks it")
    torch_major = int(torch.__version__.split(".")[0])
    if torch_major >= 2 and libtorch_major(tv_extract) < 2:
        skip(f"this python's torch {torch.__version__} saves archives that LibTorch "
             f"{libtorch_major(tv_extract)}.x cannot load (build against the venv's LibTorch: "
             f"README 'Platforms' (c))")
    work = zc.work_dir(case)
    root, paths = image_paths()
    args = ["--source", source, "--model", name]
    layout = None
    state = None
    checkpoint = None
    export_options = list(options)
    if options and options[0] in ("vissl", "plain", "mae", "open_clip"):
        layout = export_options.pop(0)
    if layout:  # weights from a synthetic checkpoint in the published layout
        if name.endswith("-rn50"):
            state = seeded_resnet50_trunk(3)
        elif not name.endswith("_ecoset"):
            p = zc.run_export(*args, *export_options, "--weights", "random", "--seed", "5",
                              "--out", work + "/seed")
            zc.check(p.returncode == 0, f"seed export: {p.stderr}")
            seed_sidecar = [f for f in os.listdir(work + "/seed") if f.endswith(".json")][0]
            with open(os.path.join(work, "seed", seed_sidecar)) as f:
                state = archive_state(os.path.join(work, "seed", json.load(f)["file"]))
        else:
            if True:
                import torchvision
                arch = {"Alexnet_ecoset": "alexnet", "Inception_ecoset": "inception_v3"}[name]
                kwargs = {"aux_logits": True, "init_weights": False} if arch == "inception_v3" else {}
                torch.manual_seed(5)
                ref = torchvision.models.get_model(arch, num_classes=565, **kwargs)
                randomise_batchnorm(ref)
                state = ref.state_dict()
        checkpoint = published_layout(state, layout)
        ckpt_file = os.path.join(work, "checkpoint.pth")
        torch.save(checkpoint, ckpt_file)
        export_options += ["--state-dict", ckpt_file]
    else:
        export_options += ["--weights", "random", "--seed", "0"]
    p = zc.run_export(*args, *export_options, "--out", work)
    if not zc.check(p.returncode == 0, f"export: {p.stderr.strip()}"):
        zc.finish()
    sidecar_file = [f for f in os.listdir(work) if f.endswith(".json")][0]
    sidecar = json.load(open(os.path.join(work, sidecar_file)))
    pt = os.path.join(work, sidecar["file"])
    print(f"exported {pt} ({sidecar['export_method']})")
    zc.check(sidecar["source"] == source and sidecar["model_name"] == name, "sidecar source/model")
    if case in EXPECTED_EXPORT:  # the export path the case is there for
        method, note = EXPECTED_EXPORT[case]
        zc.check(sidecar["export_method"] == method and note in (sidecar.get("export_note") or ""),
                 f"exported by {sidecar['export_method']} ({sidecar.get('export_note')}), expected {method} ({note})")
    if state is None:
        state = archive_state(pt)

    # tv-extract
    out = os.path.join(work, "out")
    cmd = [tv_extract, "--model", pt, "--images", root, "--out", out, "--quiet", "--batch-size", "3"]
    for m in modules:
        cmd += ["--module", m]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if not zc.check(p.returncode == 0, f"tv-extract: {p.stderr.strip()}"):
        zc.finish()
    got = {m: np.load(os.path.join(out, m, "features.npy")) for m in modules}
    with open(os.path.join(out, "file_names.txt")) as f:
        zc.check(f.read().split() == [os.path.basename(q) for q in paths], "file_names.txt order")

    # the reference
    entry = None
    if source == "timm":
        model, transform = timm_reference(name, state)
    elif name.endswith("-rn50"):
        import torchvision
        model = torchvision.models.resnet50()
        model.fc = torch.nn.Identity()
        load_into(model.eval(), state)
        transform = default_transform()
    elif name.startswith(("dino", "mae")):
        model, transform = vit_reference(name, state)
    elif name.endswith("_ecoset"):
        import torchvision
        arch = {"Alexnet_ecoset": "alexnet", "Inception_ecoset": "inception_v3"}[name]
        kwargs = {"aux_logits": True, "init_weights": False} if arch == "inception_v3" else {}
        model = torchvision.models.get_model(arch, num_classes=565, **kwargs)
        load_into(model.eval(), state)
        transform = default_transform()
    else:
        variant = variant_of(export_options).replace("/", "-")
        model, transform = openclip_reference(variant, state, quick_gelu=(name == "clip"))
        entry = model.encode_image
    batch = torch.stack([transform(Image.open(q).convert("RGB")) for q in paths])
    ref = hooked_features(model, modules, batch, entry)
    token_mode = sidecar.get("token_mode")
    n = len(paths)
    for m in modules:
        r = merged_rows_split(ref[m], n)
        if token_mode and r.dim() == 3:  # THINGSvision's token_extraction
            cls, avg = r[:, 0, :], r[:, 1:, :].mean(1)
            r = {"cls": cls, "avg": avg, "cls+avg": torch.cat([cls, avg], dim=1)}[token_mode]
        compare(f"{case} {m}", r, got[m])

    # text tower (open_clip): tv-extract --text against open_clip's tokenizer + encode_text
    if sidecar.get("family") == "open_clip" and sidecar.get("tokenizer") == "clip_bpe":
        import open_clip
        text_file = os.path.join(work, "prompts.txt")
        with open(text_file, "w") as f:
            f.write("\n".join(PROMPTS) + "\n")
        p = subprocess.run([tv_extract, "--model", pt, "--text", text_file, "--out", work + "/text",
                            "--quiet"], capture_output=True, text=True)
        if zc.check(p.returncode == 0, f"tv-extract --text: {p.stderr.strip()}"):
            tokenizer = open_clip.get_tokenizer(variant_of(export_options).replace("/", "-"))
            with torch.no_grad():
                r = model.encode_text(tokenizer(PROMPTS))
            compare(f"{case} encode_text", r, np.load(work + "/text/encode_text/features.npy"))

    # a Hugging Face text tower: the archive is the image tower (forward = encode_image), and
    # --text refuses it in one line naming the Hugging Face model
    if variant_of(export_options) in HF_TEXT_TWIN:
        zc.check(sidecar["methods"] == ["forward"] and sidecar["tokenizer"] == "unsupported",
                 f"image tower only: methods {sidecar['methods']}, tokenizer {sidecar['tokenizer']}")
        text_file = os.path.join(work, "prompts.txt")
        with open(text_file, "w") as f:
            f.write("\n".join(PROMPTS) + "\n")
        p = subprocess.run([tv_extract, "--model", pt, "--text", text_file, "--out", work + "/text",
                            "--quiet"], capture_output=True, text=True)
        lines = p.stderr.strip().splitlines()
        zc.check(p.returncode != 0 and len(lines) == 1 and "'roberta-base'" in lines[0]
                 and "image tower only" in lines[0] and not os.path.exists(work + "/text"),
                 f"--text on the image tower: exit {p.returncode}, {lines}")

    # THINGSvision itself, where it runs here
    params = {}
    if name in ("OpenCLIP", "clip"):
        params = {"variant": variant_of(export_options)}
        if name == "OpenCLIP":  # THINGSvision wants a (variant, dataset) pair open_clip knows
            import open_clip
            tags = open_clip.list_pretrained_tags_by_model(params["variant"])
            params["dataset"] = "laion400m_e32" if "laion400m_e32" in tags else tags[0]
    if sidecar.get("token_mode"):
        params["token_extraction"] = {"cls": "cls_token", "avg": "avg_pool",
                                      "cls+avg": "cls_token+avg_pool"}[sidecar["token_mode"]]
    tv_checkpoint = checkpoint if source == "ssl" or name.endswith("_ecoset") else None
    if variant_of(export_options) in HF_TEXT_TWIN:
        print("THINGSvision: not compared (open_clip builds this variant's Hugging Face text tower "
              "from the hub, also for random weights)")
    elif name.startswith(("dinov2", "mae")) or name == "clip":
        print("THINGSvision: not compared (DINOv2 comes from torch.hub's GitHub code; MAE needs "
              "timm 1.0.19's forward_features signature; clip needs OpenAI's clip package, which "
              "is not on PyPI)")
    else:
        refusal = THINGSVISION_REFUSES.get(case)
        try:
            tv = thingsvision_features(source, name, params, modules, paths, state, tv_checkpoint,
                                       os.path.join(work, "thingsvision"))
            zc.check(tv is None or refusal is None, f"THINGSvision no longer refuses ({refusal})")
        except Exception as e:  # noqa: BLE001 - THINGSvision's own failure is reported, not hidden
            expected = refusal is not None and refusal in str(e)
            zc.check(expected, f"THINGSvision failed: {type(e).__name__}: {e}")
            if expected:
                print(f"THINGSvision refuses, as expected: {type(e).__name__}: {str(e)[:160]}")
            tv = {}
        if tv is None:
            print("THINGSvision: not compared (TV_THINGSVISION_PATH not set)")
        elif tv:
            for m in modules:
                compare(f"{case} {m} vs THINGSvision", torch.from_numpy(tv[m]), got[m])
    zc.finish()


def variant_of(export_options):
    """--variant's value in the export options, else None."""
    return (export_options[export_options.index("--variant") + 1]
            if "--variant" in export_options else None)


def merged_rows_split(r, n):
    """An output whose rows merge images and patches image by image, (n·k, ...), as (n, k, ...):
    each image's k rows (what tv-extract gives it)."""
    if r.dim() >= 1 and r.shape[0] != n and r.shape[0] % n == 0:
        return r.reshape(n, -1, *r.shape[1:])
    return r


def compare(label, ref, got, rel=1e-4):
    """Per image: max|got - ref| <= rel * max|ref| (the image's), shapes equal."""
    ref = ref.detach().float().numpy() if torch.is_tensor(ref) else np.asarray(ref, np.float32)
    got = np.asarray(got, np.float32)
    if not zc.check(ref.shape == got.shape, f"{label}: shape {got.shape} != reference {ref.shape}"):
        return
    worst = 0.0
    for i in range(ref.shape[0]):
        scale = max(float(np.abs(ref[i]).max()), 1e-12)
        worst = max(worst, float(np.abs(ref[i] - got[i]).max()) / scale)
    zc.check(worst <= rel, f"{label}: max |diff| / max |ref| = {worst:.3g} > {rel}")
    print(f"{label}: {ref.shape}, max |diff| / max |ref| per image {worst:.3g}")


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[2] not in CASES:
        print(__doc__ + "\ncases: " + " ".join(CASES))
        sys.exit(2)
    run(sys.argv[2])
