using System.Text.Json;
using Shim.Os;

namespace Shim.Core.Processes;

/// <summary>One container of this shim: its bundle, rootfs mounts and init process.</summary>
public sealed class Container(string id, string bundle, bool rootfsMounted, bool sharesPidNamespace, InitProcess init)
{
    /// <summary>The container id.</summary>
    public string Id { get; } = id;

    /// <summary>The bundle directory containerd prepared.</summary>
    public string Bundle { get; } = bundle;

    /// <summary>True when the shim mounted the rootfs and must unmount it at delete.</summary>
    public bool RootfsMounted { get; } = rootfsMounted;

    /// <summary>True when the spec has no private pid namespace: init's exit must then kill the rest.</summary>
    public bool SharesPidNamespace { get; } = sharesPidNamespace;

    /// <summary>The init process.</summary>
    public InitProcess Init { get; } = init;

    /// <summary>Unmounts what the shim mounted under the bundle's rootfs.</summary>
    public void UnmountRootfs()
    {
        if (RootfsMounted)
        {
            Mounts.UnmountRecursive(Path.Combine(Bundle, "rootfs"));
        }
    }

    /// <summary>
    /// Reads config.json: does the container get a pid namespace of its own? True unless the spec
    /// lists a "pid" namespace with a path (joining another) or none at all. An unreadable spec
    /// counts as shared, as in the Go shim, so orphans are still killed.
    /// </summary>
    public static bool SpecSharesPidNamespace(string bundle)
    {
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(bundle, "config.json")));
            if (!doc.RootElement.TryGetProperty("linux", out var linux) || !linux.TryGetProperty("namespaces", out var namespaces))
            {
                return true;
            }
            foreach (var ns in namespaces.EnumerateArray())
            {
                if (ns.TryGetProperty("type", out var type) && type.GetString() == "pid")
                {
                    return ns.TryGetProperty("path", out var path) && !string.IsNullOrEmpty(path.GetString());
                }
            }
            return true;
        }
        catch (Exception ex) when (ex is IOException or JsonException or UnauthorizedAccessException or InvalidOperationException)
        {
            return true;
        }
    }
}
