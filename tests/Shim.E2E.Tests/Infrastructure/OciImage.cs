using System.Formats.Tar;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;

namespace Shim.E2E.Tests;

/// <summary>
/// OCI image-layout tarballs of the busybox rootfs (one uncompressed layer), built once per run,
/// for `ctr images import`: containers from them get their rootfs as snapshotter mounts, which the
/// shim has to mount into the bundle and take down again. Three images share the busybox layer:
/// busybox (Cmd /bin/sh), a pod sandbox ("pause") image whose entrypoint sleeps forever, and a
/// many-layered one (busybox plus <see cref="ExtraLayers"/> layers each adding /layers/N).
/// The busybox image also comes as a `docker load` archive: the same OCI layout plus the
/// manifest.json `docker save` writes next to it since Docker 25 (Docker 28 with a graph driver
/// loads only archives with a manifest.json; an OCI layout alone goes to its legacy loader).
/// </summary>
internal static class OciImage
{
    /// <summary>Reference the busybox archive is imported as.</summary>
    public const string Name = "localhost/rcs/busybox:1";

    /// <summary>Reference of the pause image CRI runs as each pod's sandbox container.</summary>
    public const string PauseName = "localhost/rcs/pause:1";

    /// <summary>Reference of the many-layered image.</summary>
    public const string LayeredName = "localhost/rcs/layers:1";

    /// <summary>Layers the many-layered image has on top of busybox's: enough for a lowerdir list longer than a page.</summary>
    public const int ExtraLayers = 120;

    private static readonly Lazy<Task<string>> Built = new(() => Task.Run(() => Build(Name, null, ["/bin/sh"], 0, ".oci.tar")));
    private static readonly Lazy<Task<string>> PauseBuilt = new(() => Task.Run(() => Build(PauseName, ["/bin/sleep", "2147483647"], null, 0, ".pause.oci.tar")));
    private static readonly Lazy<Task<string>> LayeredBuilt = new(() => Task.Run(() => Build(LayeredName, null, ["/bin/sh"], ExtraLayers, ".layers.oci.tar")));
    private static readonly Lazy<Task<string>> DockerBuilt = new(() => Task.Run(() => Build(Name, null, ["/bin/sh"], 0, ".docker.tar", dockerManifest: true)));

    /// <summary>Paths of the archives built so far (for the end-of-run cleanup).</summary>
    public static IEnumerable<string> BuiltPaths =>
        new[] { Built, PauseBuilt, LayeredBuilt, DockerBuilt }.Where(l => l.IsValueCreated && l.Value.IsCompletedSuccessfully).Select(l => l.Value.Result);

    /// <summary>Path of the busybox archive (null until built).</summary>
    public static string? PathIfBuilt => Built.IsValueCreated && Built.Value.IsCompletedSuccessfully ? Built.Value.Result : null;

    /// <summary>Builds the busybox archive on first use and returns its path.</summary>
    public static Task<string> GetAsync() => Built.Value;

    /// <summary>Builds the pause archive (Entrypoint /bin/sleep 2147483647) on first use and returns its path.</summary>
    public static Task<string> GetPauseAsync() => PauseBuilt.Value;

    /// <summary>Builds the many-layered archive (busybox + <see cref="ExtraLayers"/> one-file layers) on first use and returns its path.</summary>
    public static Task<string> GetLayeredAsync() => LayeredBuilt.Value;

    /// <summary>Builds the busybox archive for `docker load` (OCI layout + manifest.json) on first use and returns its path.</summary>
    public static Task<string> GetDockerAsync() => DockerBuilt.Value;

    private static async Task<string> Build(string name, string[]? entrypoint, string[]? cmd, int extraLayers, string suffix, bool dockerManifest = false)
    {
        var rootfs = await Rootfs.GetAsync();
        var layer = new MemoryStream();
        await using (var w = new TarWriter(layer, TarEntryFormat.Pax, leaveOpen: true))
        {
            foreach (var path in Directory.EnumerateFileSystemEntries(rootfs, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
            {
                await w.WriteEntryAsync(path, Path.GetRelativePath(rootfs, path));
            }
        }
        var layers = new List<byte[]> { layer.ToArray() };
        for (int n = 1; n <= extraLayers; n++)
        {
            layers.Add(await OneFileLayer($"layers/{n}"));
        }
        var config = Json(new JsonObject
        {
            ["architecture"] = "amd64",
            ["os"] = "linux",
            ["config"] = ImageConfig(entrypoint, cmd),
            ["rootfs"] = new JsonObject { ["type"] = "layers", ["diff_ids"] = new JsonArray([.. layers.Select(l => (JsonNode)Digest(l))]) },
        });
        var manifest = Json(new JsonObject
        {
            ["schemaVersion"] = 2,
            ["mediaType"] = "application/vnd.oci.image.manifest.v1+json",
            ["config"] = Descriptor("application/vnd.oci.image.config.v1+json", config),
            ["layers"] = new JsonArray([.. layers.Select(l => (JsonNode)Descriptor("application/vnd.oci.image.layer.v1.tar", l))]),
        });
        var manifestDescriptor = Descriptor("application/vnd.oci.image.manifest.v1+json", manifest);
        manifestDescriptor["annotations"] = new JsonObject
        {
            ["io.containerd.image.name"] = name,
            ["org.opencontainers.image.ref.name"] = name[(name.LastIndexOf(':') + 1)..],
        };
        var index = Json(new JsonObject
        {
            ["schemaVersion"] = 2,
            ["mediaType"] = "application/vnd.oci.image.index.v1+json",
            ["manifests"] = new JsonArray(manifestDescriptor),
        });

        var archive = rootfs + suffix;
        await using (var fs = File.Create(archive))
        await using (var w = new TarWriter(fs, TarEntryFormat.Pax))
        {
            await Add(w, "oci-layout", Encoding.UTF8.GetBytes("{\"imageLayoutVersion\":\"1.0.0\"}"));
            await Add(w, "index.json", index);
            foreach (var blob in layers.Append(config).Append(manifest))
            {
                await Add(w, "blobs/sha256/" + Digest(blob)["sha256:".Length..], blob);
            }
            if (dockerManifest)
            {
                static JsonNode Blob(byte[] b) => "blobs/sha256/" + Digest(b)["sha256:".Length..];
                await Add(w, "manifest.json", Encoding.UTF8.GetBytes(new JsonArray(new JsonObject
                {
                    ["Config"] = Blob(config),
                    ["RepoTags"] = new JsonArray(name),
                    ["Layers"] = new JsonArray([.. layers.Select(Blob)]),
                }).ToJsonString()));
            }
        }
        return archive;
    }

    // A layer holding directory `layers/` and the empty file at `path` (its name makes each layer distinct).
    private static async Task<byte[]> OneFileLayer(string path)
    {
        var layer = new MemoryStream();
        await using (var w = new TarWriter(layer, TarEntryFormat.Pax, leaveOpen: true))
        {
            await w.WriteEntryAsync(new PaxTarEntry(TarEntryType.Directory, "layers/") { Mode = (UnixFileMode)Convert.ToInt32("755", 8) });
            await w.WriteEntryAsync(new PaxTarEntry(TarEntryType.RegularFile, path) { Mode = (UnixFileMode)Convert.ToInt32("644", 8) });
        }
        return layer.ToArray();
    }

    private static JsonObject ImageConfig(string[]? entrypoint, string[]? cmd)
    {
        var c = new JsonObject { ["Env"] = new JsonArray("PATH=/bin") };
        if (entrypoint is not null) { c["Entrypoint"] = new JsonArray([.. entrypoint.Select(a => (JsonNode)a)]); }
        if (cmd is not null) { c["Cmd"] = new JsonArray([.. cmd.Select(a => (JsonNode)a)]); }
        return c;
    }

    private static async Task Add(TarWriter w, string name, byte[] data)
    {
        var e = new PaxTarEntry(TarEntryType.RegularFile, name) { DataStream = new MemoryStream(data), Mode = (UnixFileMode)Convert.ToInt32("644", 8) };
        await w.WriteEntryAsync(e);
    }

    private static JsonObject Descriptor(string mediaType, byte[] blob) => new()
    {
        ["mediaType"] = mediaType,
        ["digest"] = Digest(blob),
        ["size"] = blob.Length,
    };

    private static string Digest(byte[] b) => "sha256:" + Convert.ToHexString(SHA256.HashData(b)).ToLowerInvariant();

    private static byte[] Json(JsonObject o) => Encoding.UTF8.GetBytes(o.ToJsonString());
}
