namespace Shim.Core.Cgroups;

/// <summary>The contents of /proc/&lt;pid&gt;/cgroup.</summary>
internal sealed class ProcCgroup
{
    private ProcCgroup(IReadOnlyDictionary<string, string> controllers, string? unified)
    {
        Controllers = controllers;
        Unified = unified;
    }

    /// <summary>v1 controller (e.g. "memory", "cpuacct", "name=systemd") → cgroup path; one entry per controller of a joined hierarchy.</summary>
    public IReadOnlyDictionary<string, string> Controllers { get; }

    /// <summary>Path of the v2 line ("0::/path"), or null when there is none.</summary>
    public string? Unified { get; }

    /// <summary>Parses "id:controllers:path" lines (containerd's <c>ParseCgroupFromReaderUnified</c>); throws <see cref="FormatException"/> on a line without two colons.</summary>
    public static ProcCgroup Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var controllers = new Dictionary<string, string>(StringComparer.Ordinal);
        string? unified = null;
        foreach (var rawLine in text.Split('\n'))
        {
            string line = rawLine.TrimEnd('\r');
            if (line.Length == 0)
            {
                continue;
            }
            string[] parts = line.Split(':', 3);
            if (parts.Length < 3)
            {
                throw new FormatException($"invalid cgroup entry: \"{line}\"");
            }
            foreach (var controller in parts[1].Split(','))
            {
                if (controller.Length == 0)
                {
                    unified = parts[2];
                }
                else
                {
                    controllers[controller] = parts[2];
                }
            }
        }
        return new ProcCgroup(controllers, unified);
    }
}
