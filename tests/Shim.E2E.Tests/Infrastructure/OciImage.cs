using System.Formats.Tar;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;

namespace Shim.E2E.Tests;

/// <summary>
/// An OCI image-layout tarball of the busybox rootfs (one uncompressed layer), built once per run,
/// for `ctr images import`: containers from it get their rootfs as snapshotter mounts, which the
/// shim has to mount into the bundle and take down again.
/// </summary>
internal static class OciImage
{
    /// <summary>Reference the archive is imported as.</summary>
    public const string Name = "localhost/rcs/busybox:1";

    private static readonly Lazy<Task<string>> Built = new(() => Task.Run(Build));

    /// <summary>Path of the archive (null until built).</summary>
    public static string? PathIfBuilt => Built.IsValueCreated && Built.Value.IsCompletedSuccessfully ? Built.Value.Result : null;

    /// <summary>Builds the archive on first use and returns its path.</summary>
    public static Task<string> GetAsync() => Built.Value;

    private static async Task<string> Build()
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
        var layerBytes = layer.ToArray();
        var config = Json(new JsonObject
        {
            ["architecture"] = "amd64",
            ["os"] = "linux",
            ["config"] = new JsonObject { ["Env"] = new JsonArray("PATH=/bin"), ["Cmd"] = new JsonArray("/bin/sh") },
            ["rootfs"] = new JsonObject { ["type"] = "layers", ["diff_ids"] = new JsonArray(Digest(layerBytes)) },
        });
        var manifest = Json(new JsonObject
        {
            ["schemaVersion"] = 2,
            ["mediaType"] = "application/vnd.oci.image.manifest.v1+json",
            ["config"] = Descriptor("application/vnd.oci.image.config.v1+json", config),
            ["layers"] = new JsonArray(Descriptor("application/vnd.oci.image.layer.v1.tar", layerBytes)),
        });
        var manifestDescriptor = Descriptor("application/vnd.oci.image.manifest.v1+json", manifest);
        manifestDescriptor["annotations"] = new JsonObject
        {
            ["io.containerd.image.name"] = Name,
            ["org.opencontainers.image.ref.name"] = "1",
        };
        var index = Json(new JsonObject
        {
            ["schemaVersion"] = 2,
            ["mediaType"] = "application/vnd.oci.image.index.v1+json",
            ["manifests"] = new JsonArray(manifestDescriptor),
        });

        var archive = rootfs + ".oci.tar";
        await using (var fs = File.Create(archive))
        await using (var w = new TarWriter(fs, TarEntryFormat.Pax))
        {
            await Add(w, "oci-layout", Encoding.UTF8.GetBytes("{\"imageLayoutVersion\":\"1.0.0\"}"));
            await Add(w, "index.json", index);
            foreach (var blob in new[] { layerBytes, config, manifest })
            {
                await Add(w, "blobs/sha256/" + Digest(blob)["sha256:".Length..], blob);
            }
        }
        return archive;
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
