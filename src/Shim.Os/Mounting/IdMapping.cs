using System.Globalization;
using System.Text;

namespace Shim.Os.Mounting;

/// <summary>One line of a uid_map/gid_map: <see cref="Size"/> ids from <see cref="ContainerId"/> inside map to <see cref="HostId"/> outside.</summary>
internal readonly record struct IdMapping(uint ContainerId, uint HostId, uint Size)
{
    /// <summary>
    /// Parses containerd's "container:host:size[,container:host:size...]" (the uidmap=/gidmap=
    /// option value, core/mount/mount_idmapped_linux.go parseIDMappingList); throws
    /// <see cref="FormatException"/> naming the part that does not parse.
    /// </summary>
    internal static IdMapping[] ParseList(string value)
    {
        string[] entries = value.Split(',');
        var mappings = new IdMapping[entries.Length];
        for (int i = 0; i < entries.Length; i++)
        {
            string[] parts = entries[i].Split(':');
            if (parts.Length != 3)
            {
                throw new FormatException($"mapping \"{entries[i]}\" is not container-id:host-id:size");
            }
            uint container = Number(parts[0], "container id", entries[i]);
            uint host = Number(parts[1], "host id", entries[i]);
            uint size = Number(parts[2], "size", entries[i]);
            if (size == 0 || (ulong)container + size > uint.MaxValue || (ulong)host + size > uint.MaxValue)
            {
                throw new FormatException($"mapping \"{entries[i]}\" has a size of 0 or runs past the last id");
            }
            mappings[i] = new IdMapping(container, host, size);
        }
        return mappings;
    }

    /// <summary>The text written to /proc/PID/uid_map or gid_map: one "inside outside size" line per mapping.</summary>
    internal static string ToProcFormat(IReadOnlyList<IdMapping> mappings)
    {
        var text = new StringBuilder();
        foreach (var m in mappings)
        {
            text.Append(CultureInfo.InvariantCulture, $"{m.ContainerId} {m.HostId} {m.Size}\n");
        }
        return text.ToString();
    }

    private static uint Number(string text, string what, string entry) =>
        uint.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out uint value)
            ? value
            : throw new FormatException($"mapping \"{entry}\": {what} \"{text}\" is not a non-negative integer");
}
