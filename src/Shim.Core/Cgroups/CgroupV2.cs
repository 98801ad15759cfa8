using System.Globalization;
using Containerd.Cgroups.V2.Stats;
using Shim.Core.Errors;
using Shim.Protos;
using static Shim.Core.Cgroups.CgroupFiles;
using IOPath = System.IO.Path;

namespace Shim.Core.Cgroups;

/// <summary>A cgroup v2 container cgroup: one directory, &lt;root&gt;&lt;path&gt;.</summary>
/// <remarks>
/// Metrics follow containerd/cgroups cgroup2 <c>Manager.Stat</c> field by field: pids, cpu
/// (+ cpu.pressure), memory (memory.stat, current/max/peak, swap.current/max/peak, pressure),
/// memory.events, io.stat (+ io.pressure), rdma, hugetlb. As upstream, "max" reads as
/// ulong.MaxValue here (v1 reads it as 0), and pids/cpu/memory/io/rdma messages are always present.
/// </remarks>
internal sealed class CgroupV2 : ICgroup
{
    private readonly string _hugePagesDirectory;

    /// <summary>The cgroup at <paramref name="path"/> (as in "0::/path") under the unified mount <paramref name="root"/>.</summary>
    public CgroupV2(string path, string root = CgroupFactory.DefaultRoot)
        : this(path, root, HugePageSizes.DefaultDirectory)
    {
    }

    internal CgroupV2(string path, string root, string hugePagesDirectory)
    {
        ArgumentNullException.ThrowIfNull(path);
        Path = path;
        Directory = IOPath.Join(root, path.TrimStart('/'));
        _hugePagesDirectory = hugePagesDirectory;
    }

    /// <inheritdoc/>
    public string Path { get; }

    /// <summary>The cgroup's directory (memory.events, cgroup.events live here).</summary>
    public string Directory { get; }

    /// <inheritdoc/>
    public Google.Protobuf.WellKnownTypes.Any Stats() => TypeUrls.Pack(ReadMetrics());

    /// <summary>Reads the cgroup into io.containerd.cgroups.v2.Metrics.</summary>
    public Metrics ReadMetrics()
    {
        if (!System.IO.Directory.Exists(Directory))
        {
            throw Deleted();
        }
        var metrics = new Metrics
        {
            Pids = new PidsStat
            {
                Current = ReadUintV2(File("pids.current")),
                Limit = ReadUintV2(File("pids.max")),
            },
            Cpu = ReadCpu(),
            Memory = ReadMemory(),
            MemoryEvents = ReadMemoryEvents(File("memory.events")),
            Io = new IOStat { Psi = ReadPsi(File("io.pressure")) },
            Rdma = new RdmaStat(),
        };
        if (TryReadText(File("io.stat")) is { } io)
        {
            metrics.Io.Usage.AddRange(ParseIoStat(io));
        }
        AddRdma(File("rdma.current"), metrics.Rdma.Current);
        AddRdma(File("rdma.max"), metrics.Rdma.Limit);
        foreach (var size in HugePageSizes.Read(_hugePagesDirectory))
        {
            string prefix = File("hugetlb." + size + ".");
            metrics.Hugetlb.Add(new HugeTlbStat
            {
                Pagesize = size,
                Current = ReadUintV2(prefix + "current"),
                Max = ReadUintV2(prefix + "max"),
                Failcnt = ReadKeyValues(prefix + "events").Get("max"),
            });
        }
        if (!System.IO.Directory.Exists(Directory))
        {
            throw Deleted();   // removed while we were reading: the zeros are not real
        }
        return metrics;
    }

    /// <summary>memory.events as the message, or null when the file is missing or empty (as upstream).</summary>
    internal static MemoryEvents? ReadMemoryEvents(string path)
    {
        var raw = ReadKeyValues(path);
        if (raw is null || raw.Count == 0)
        {
            return null;
        }
        return new MemoryEvents
        {
            Low = raw.Get("low"),
            High = raw.Get("high"),
            Max = raw.Get("max"),
            Oom = raw.Get("oom"),
            OomKill = raw.Get("oom_kill"),
            OomGroupKill = raw.Get("oom_group_kill"),
        };
    }

    /// <summary>io.stat lines "8:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0" (split on single spaces, as upstream).</summary>
    internal static List<IOEntry> ParseIoStat(string text)
    {
        var usage = new List<IOEntry>();
        foreach (var line in text.Split('\n'))
        {
            string[] parts = line.Split(' ');
            if (parts.Length < 2)
            {
                continue;
            }
            string[] majorMinor = parts[0].Split(':');
            if (majorMinor.Length != 2)
            {
                continue;
            }
            if (!ulong.TryParse(majorMinor[0], NumberStyles.None, CultureInfo.InvariantCulture, out ulong major)
                || !ulong.TryParse(majorMinor[1], NumberStyles.None, CultureInfo.InvariantCulture, out ulong minor))
            {
                return usage;   // upstream stops at the first bad device number
            }
            var entry = new IOEntry { Major = major, Minor = minor };
            for (int i = 1; i < parts.Length; i++)
            {
                string[] pair = parts[i].Split('=');
                if (pair.Length != 2 || !ulong.TryParse(pair[1], NumberStyles.None, CultureInfo.InvariantCulture, out ulong value))
                {
                    continue;
                }
                switch (pair[0])
                {
                    case "rbytes":
                        entry.Rbytes = value;
                        break;
                    case "wbytes":
                        entry.Wbytes = value;
                        break;
                    case "rios":
                        entry.Rios = value;
                        break;
                    case "wios":
                        entry.Wios = value;
                        break;
                }
            }
            usage.Add(entry);
        }
        return usage;
    }

    /// <summary>A *.pressure file ("some avg10=0.00 avg60=0.00 avg300=0.00 total=0" / "full ..."); null when missing, unreadable or malformed.</summary>
    internal static PSIStats? ReadPsi(string path) => TryReadText(path) is { } text ? ParsePsi(text) : null;

    internal static PSIStats? ParsePsi(string text)
    {
        var psi = new PSIStats();
        foreach (var line in Lines(text))
        {
            string[] parts = Fields(line);
            PSIData? data = parts[0] switch
            {
                "some" => psi.Some = new PSIData(),
                "full" => psi.Full = new PSIData(),
                _ => null,
            };
            if (data is null)
            {
                continue;
            }
            for (int i = 1; i < parts.Length; i++)
            {
                string[] pair = parts[i].Split('=', 2);
                if (pair.Length != 2)
                {
                    return null;
                }
                switch (pair[0])
                {
                    case "avg10" or "avg60" or "avg300":
                        if (!double.TryParse(pair[1], NumberStyles.Float, CultureInfo.InvariantCulture, out double average))
                        {
                            return null;
                        }
                        if (pair[0] == "avg10")
                        {
                            data.Avg10 = average;
                        }
                        else if (pair[0] == "avg60")
                        {
                            data.Avg60 = average;
                        }
                        else
                        {
                            data.Avg300 = average;
                        }
                        break;
                    case "total":
                        if (!ulong.TryParse(pair[1], NumberStyles.None, CultureInfo.InvariantCulture, out ulong total))
                        {
                            return null;
                        }
                        data.Total = total;
                        break;
                }
            }
        }
        return psi;
    }

    private string File(string name) => IOPath.Join(Directory, name);

    private ShimException Deleted() => new(ErrorKind.NotFound, $"cgroup does not exist: {Path}");

    private CPUStat ReadCpu()
    {
        if (ReadKeyValues(File("cpu.stat")) is not { } stat)
        {
            return new CPUStat();
        }
        return new CPUStat
        {
            UsageUsec = stat.Get("usage_usec"),
            UserUsec = stat.Get("user_usec"),
            SystemUsec = stat.Get("system_usec"),
            NrPeriods = stat.Get("nr_periods"),
            NrThrottled = stat.Get("nr_throttled"),
            ThrottledUsec = stat.Get("throttled_usec"),
            NrBursts = stat.Get("nr_bursts"),
            BurstUsec = stat.Get("burst_usec"),
            Psi = ReadPsi(File("cpu.pressure")),
        };
    }

    private MemoryStat ReadMemory()
    {
        // Upstream returns an empty message, without usage/limits, when memory.stat is missing.
        if (ReadKeyValues(File("memory.stat")) is not { } raw)
        {
            return new MemoryStat();
        }
        var memory = new MemoryStat
        {
            Usage = ReadUintV2(File("memory.current")),
            UsageLimit = ReadUintV2(File("memory.max")),
            MaxUsage = ReadUintV2(File("memory.peak")),
            SwapUsage = ReadUintV2(File("memory.swap.current")),
            SwapLimit = ReadUintV2(File("memory.swap.max")),
            SwapMaxUsage = ReadUintV2(File("memory.swap.peak")),
            Psi = ReadPsi(File("memory.pressure")),
        };
        FillMemoryStat(raw, memory);
        return memory;
    }

    /// <summary>memory.stat keys → MemoryStat fields (absent keys stay 0), as cgroup2 readMemoryStats.</summary>
    internal static void FillMemoryStat(Dictionary<string, ulong> raw, MemoryStat stat)
    {
        stat.Anon = raw.Get("anon");
        stat.File = raw.Get("file");
        stat.KernelStack = raw.Get("kernel_stack");
        stat.Slab = raw.Get("slab");
        stat.Sock = raw.Get("sock");
        stat.Shmem = raw.Get("shmem");
        stat.FileMapped = raw.Get("file_mapped");
        stat.FileDirty = raw.Get("file_dirty");
        stat.FileWriteback = raw.Get("file_writeback");
        stat.AnonThp = raw.Get("anon_thp");
        stat.InactiveAnon = raw.Get("inactive_anon");
        stat.ActiveAnon = raw.Get("active_anon");
        stat.InactiveFile = raw.Get("inactive_file");
        stat.ActiveFile = raw.Get("active_file");
        stat.Unevictable = raw.Get("unevictable");
        stat.SlabReclaimable = raw.Get("slab_reclaimable");
        stat.SlabUnreclaimable = raw.Get("slab_unreclaimable");
        stat.Pgfault = raw.Get("pgfault");
        stat.Pgmajfault = raw.Get("pgmajfault");
        stat.WorkingsetRefault = raw.Get("workingset_refault");
        stat.WorkingsetActivate = raw.Get("workingset_activate");
        stat.WorkingsetNodereclaim = raw.Get("workingset_nodereclaim");
        stat.Pgrefill = raw.Get("pgrefill");
        stat.WorkingsetRefaultAnon = raw.Get("workingset_refault_anon");
        stat.WorkingsetRefaultFile = raw.Get("workingset_refault_file");
        stat.WorkingsetActivateAnon = raw.Get("workingset_activate_anon");
        stat.WorkingsetActivateFile = raw.Get("workingset_activate_file");
        stat.Pgscan = raw.Get("pgscan");
        stat.Pgsteal = raw.Get("pgsteal");
        stat.Pgactivate = raw.Get("pgactivate");
        stat.Pgdeactivate = raw.Get("pgdeactivate");
        stat.Pglazyfree = raw.Get("pglazyfree");
        stat.Pglazyfreed = raw.Get("pglazyfreed");
        stat.ThpFaultAlloc = raw.Get("thp_fault_alloc");
        stat.ThpCollapseAlloc = raw.Get("thp_collapse_alloc");
    }

    private static void AddRdma(string path, Google.Protobuf.Collections.RepeatedField<RdmaEntry> into)
    {
        if (TryReadText(path) is not { } text)
        {
            return;
        }
        foreach (var (device, handles, objects) in RdmaFile.Parse(text))
        {
            into.Add(new RdmaEntry { Device = device, HcaHandles = handles, HcaObjects = objects });
        }
    }
}
