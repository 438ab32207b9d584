"""The cloud assembly: `cdk synth` run offline into a directory, and its manifest read back as stacks."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from headrace.local.cloudformation import ProvisionError

REPO = Path(__file__).resolve().parents[3]


@dataclass
class StackArtifact:
    name: str
    template_file: Path
    asset_manifest: Path | None
    dependencies: list[str] = field(default_factory=list)


def synthesize(outdir: Path, stage: str, models_dir: Path | None = None) -> Path:
    """Run the real CDK app (`app.py`) offline into `outdir`; a bad model config fails here, by name."""
    outdir.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "CDK_OUTDIR": str(outdir),
        "CDK_CONTEXT_JSON": json.dumps({"stage": stage}),
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
    }
    if models_dir is not None:
        env["HEADRACE_MODELS_DIR"] = str(models_dir)
    done = subprocess.run(
        [sys.executable, str(REPO / "app.py")], env=env, cwd=REPO, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise ProvisionError(f"cdk synth failed:\n{done.stderr.strip() or done.stdout.strip()}")
    return outdir


def read_assembly(outdir: Path) -> list[StackArtifact]:
    """The assembly's stacks in dependency order."""
    manifest = json.loads((outdir / "manifest.json").read_text())
    artifacts = manifest["artifacts"]
    stacks: dict[str, StackArtifact] = {}
    for name, artifact in artifacts.items():
        if artifact["type"] != "aws:cloudformation:stack":
            continue
        asset_manifests = [
            outdir / artifacts[dep]["properties"]["file"]
            for dep in artifact.get("dependencies", [])
            if artifacts.get(dep, {}).get("type") == "cdk:asset-manifest"
        ]
        stacks[name] = StackArtifact(
            name=artifact["properties"].get("stackName", name),
            template_file=outdir / artifact["properties"]["templateFile"],
            asset_manifest=asset_manifests[0] if asset_manifests else None,
            dependencies=[d for d in artifact.get("dependencies", []) if d in artifacts and d != name],
        )
    ordered: list[StackArtifact] = []
    while len(ordered) < len(stacks):
        ready = [
            s
            for key, s in stacks.items()
            if s not in ordered
            and all(stacks[d] in ordered for d in s.dependencies if d in stacks)
            and key not in {o.name for o in ordered}
        ]
        if not ready:
            raise ProvisionError("the assembly's stacks depend on each other in a cycle")
        ordered.extend(ready)
    return ordered


def zip_directory(path: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for file in sorted(p for p in path.rglob("*") if p.is_file()):
            archive.write(file, file.relative_to(path).as_posix())
    return buffer.getvalue()
