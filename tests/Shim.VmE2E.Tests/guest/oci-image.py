#!/usr/bin/env python3
"""oci-image.py ROOTFS NAME OUT.tar [ENTRYPOINT...] -- an OCI image-layout archive of ROOTFS (one
uncompressed layer) for `ctr images import`, as the E2E project's OciImage builds it on the host.
Runs in the cgroup v2 guest, which has python3 but no dotnet start-up to spare."""
import hashlib, io, json, os, sys, tarfile

rootfs, name, out, entrypoint = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]

def digest(b):
    return "sha256:" + hashlib.sha256(b).hexdigest()

layer = io.BytesIO()
with tarfile.open(fileobj=layer, mode="w", format=tarfile.PAX_FORMAT) as t:
    for entry in sorted(os.listdir(rootfs)):
        t.add(os.path.join(rootfs, entry), arcname=entry)
layer = layer.getvalue()
conf = {"Env": ["PATH=/bin"]}
if entrypoint:
    conf["Entrypoint"] = entrypoint
else:
    conf["Cmd"] = ["/bin/sh"]
config = json.dumps({"architecture": "amd64", "os": "linux", "config": conf,
                     "rootfs": {"type": "layers", "diff_ids": [digest(layer)]}}).encode()
def desc(media, blob):
    return {"mediaType": media, "digest": digest(blob), "size": len(blob)}
manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "config": desc("application/vnd.oci.image.config.v1+json", config),
                       "layers": [desc("application/vnd.oci.image.layer.v1.tar", layer)]}).encode()
md = desc("application/vnd.oci.image.manifest.v1+json", manifest)
md["annotations"] = {"io.containerd.image.name": name, "org.opencontainers.image.ref.name": name.rsplit(":", 1)[1]}
index = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [md]}).encode()

with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as t:
    def add(n, data):
        i = tarfile.TarInfo(n); i.size = len(data); i.mode = 0o644
        t.addfile(i, io.BytesIO(data))
    add("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
    add("index.json", index)
    for blob in (layer, config, manifest):
        add("blobs/sha256/" + digest(blob)[7:], blob)
