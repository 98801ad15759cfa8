using System.Text;
using System.Text.Json;

namespace Shim.Core.Cli;

/// <summary>The runc shim's socket naming rule, which grouping relies on (PROTOCOL.md §5).</summary>
public static class ShimAddress
{
    /// <summary>Directory of shim sockets for containerd 1.x and 2.x running as root.</summary>
    public const string DefaultSocketDir = "/run/containerd/s";

    /// <summary>unix://&lt;dir&gt;/&lt;sha256 hex of "&lt;address&gt;/&lt;namespace&gt;/&lt;group&gt;"&gt;.</summary>
    public static string For(string containerdAddress, string ns, string groupId, string socketDir = DefaultSocketDir)
    {
        // Go's filepath.Join collapses duplicate slashes; the hash input must match byte for byte
        string joined = JoinLikeGo(containerdAddress, ns, groupId);
        string hex = Convert.ToHexStringLower(Sha256.Hash(Encoding.UTF8.GetBytes(joined)));
        return "unix://" + Path.Combine(socketDir, hex);
    }

    /// <summary>The filesystem path inside a unix:// address.</summary>
    public static string PathOf(string address)
    {
        ArgumentNullException.ThrowIfNull(address);
        return address.StartsWith("unix://", StringComparison.Ordinal) ? address["unix://".Length..] : address;
    }

    /// <summary>
    /// The group of a bundle: annotation io.containerd.runc.v2.group, then io.kubernetes.cri.sandbox-id,
    /// else the task id itself.
    /// </summary>
    public static string GroupOf(ReadOnlySpan<byte> configJson, string id)
    {
        using var doc = JsonDocument.Parse(configJson.ToArray());
        if (doc.RootElement.TryGetProperty("annotations", out var annotations) && annotations.ValueKind == JsonValueKind.Object)
        {
            foreach (string key in (ReadOnlySpan<string>)["io.containerd.runc.v2.group", "io.kubernetes.cri.sandbox-id"])
            {
                if (annotations.TryGetProperty(key, out var value) && value.GetString() is { Length: > 0 } group)
                {
                    return group;
                }
            }
        }
        return id;
    }

    private static string JoinLikeGo(params ReadOnlySpan<string> parts)
    {
        var sb = new StringBuilder();
        foreach (var part in parts)
        {
            if (part.Length == 0)
            {
                continue;
            }
            if (sb.Length > 0)
            {
                sb.Append('/');
            }
            sb.Append(part);
        }
        string s = sb.ToString();
        while (s.Contains("//", StringComparison.Ordinal))
        {
            s = s.Replace("//", "/", StringComparison.Ordinal);
        }
        return s.Length > 1 ? s.TrimEnd('/') : s;
    }
}
