using Containerd.Cgroups.V1.Stats;
using Google.Protobuf.Collections;
using static Shim.Core.Cgroups.CgroupFiles;
using IOPath = System.IO.Path;

namespace Shim.Core.Cgroups;

/// <summary>blkio controller: the CFQ *_recursive files, else the throttle.* files, with device names from /proc/partitions.</summary>
internal sealed partial class CgroupV1
{
    private static readonly (string File, Func<BlkIOStat, RepeatedField<BlkIOEntry>> Entries)[] CfqFiles =
    [
        ("sectors_recursive", s => s.SectorsRecursive),
        ("io_service_bytes_recursive", s => s.IoServiceBytesRecursive),
        ("io_serviced_recursive", s => s.IoServicedRecursive),
        ("io_queued_recursive", s => s.IoQueuedRecursive),
        ("io_service_time_recursive", s => s.IoServiceTimeRecursive),
        ("io_wait_time_recursive", s => s.IoWaitTimeRecursive),
        ("io_merged_recursive", s => s.IoMergedRecursive),
        ("time_recursive", s => s.IoTimeRecursive),
    ];

    // Note upstream reads the non-recursive throttle files here, under the *_recursive fields.
    private static readonly (string File, Func<BlkIOStat, RepeatedField<BlkIOEntry>> Entries)[] ThrottleFiles =
    [
        ("throttle.io_serviced", s => s.IoServicedRecursive),
        ("throttle.io_service_bytes", s => s.IoServiceBytesRecursive),
    ];

    internal static BlkIOStat ReadBlkio(string directory, string partitionsPath)
    {
        var stat = new BlkIOStat();
        var devices = TryReadText(partitionsPath) is { } partitions ? ParsePartitions(partitions) : [];
        int size = 0;
        // CFQ statistics first (blkio.io_serviced_recursive only exists with CFQ); cgroups using
        // other schedulers (or kernels without CFQ, 5.0+) have empty or no such files.
        if (File.Exists(IOPath.Join(directory, "blkio.io_serviced_recursive")))
        {
            foreach (var (file, entries) in CfqFiles)
            {
                size += ReadBlkioEntries(IOPath.Join(directory, "blkio." + file), devices, entries(stat));
            }
        }
        if (size == 0)
        {
            foreach (var (file, entries) in ThrottleFiles)
            {
                ReadBlkioEntries(IOPath.Join(directory, "blkio." + file), devices, entries(stat));
            }
        }
        return stat;
    }

    /// <summary>"8:0 Read 4096" (or "8:0 4096") lines; "Total N" lines skipped; returns the number of entries added.</summary>
    internal static int ReadBlkioEntries(string path, Dictionary<(ulong Major, ulong Minor), string> devices, RepeatedField<BlkIOEntry> into)
    {
        if (TryReadText(path) is not { } text)
        {
            return 0;
        }
        int added = 0;
        foreach (var line in Lines(text))
        {
            string[] fields = line.Split([' ', ':'], StringSplitOptions.RemoveEmptyEntries);
            if (fields.Length < 3
                || !TryParseUint(fields[0], out ulong major)
                || !TryParseUint(fields[1], out ulong minor))
            {
                continue;   // "Total 1234", or garbage
            }
            string op = fields.Length == 4 ? fields[2] : "";
            if (!TryParseUint(fields[fields.Length == 4 ? 3 : 2], out ulong value))
            {
                continue;
            }
            into.Add(new BlkIOEntry
            {
                Device = devices.GetValueOrDefault((major, minor), ""),
                Major = major,
                Minor = minor,
                Op = op,
                Value = value,
            });
            added++;
        }
        return added;
    }

    /// <summary>/proc/partitions (two header lines, then "major minor #blocks name") → "/dev/name", first occurrence wins.</summary>
    internal static Dictionary<(ulong Major, ulong Minor), string> ParsePartitions(string text)
    {
        var devices = new Dictionary<(ulong, ulong), string>();
        string[] lines = text.Split('\n');
        for (int i = 2; i < lines.Length; i++)
        {
            string[] fields = Fields(lines[i]);
            if (fields.Length < 4
                || !TryParseUint(fields[0], out ulong major)
                || !TryParseUint(fields[1], out ulong minor))
            {
                continue;
            }
            devices.TryAdd((major, minor), "/dev/" + fields[3]);
        }
        return devices;
    }
}
