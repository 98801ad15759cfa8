using Containerd.Cgroups.V1.Stats;
using Shim.Core.Errors;
using Shim.Protos;
using static Shim.Core.Cgroups.CgroupFiles;
using IOPath = System.IO.Path;

namespace Shim.Core.Cgroups;

/// <summary>A cgroup v1 container cgroup: one directory per controller, &lt;root&gt;/&lt;controller&gt;&lt;path&gt;.</summary>
/// <remarks>
/// Metrics follow containerd/cgroups cgroup1 (cpuacct, cpu, memory, pids, blkio, hugetlb, rdma
/// stat functions) field by field, as the Go shim calls it (<c>Stat(IgnoreNotExist)</c>), except
/// that a missing file only leaves its own fields zero instead of ending that controller's stats.
/// Paths are used as /proc/&lt;pid&gt;/cgroup lists them; like the Go shim on a host cgroup namespace,
/// no mountinfo re-rooting is done.
/// </remarks>
internal sealed partial class CgroupV1 : ICgroup
{
    // cpuacct.stat is in USER_HZ ticks, which is 100 on every Linux ABI (containerd hard-codes it too).
    private const ulong ClockTicks = 100;
    private const ulong NanosecondsPerSecond = 1_000_000_000;

    private readonly string _root;
    private readonly string _procRoot;
    private readonly string _hugePagesDirectory;

    /// <summary>Controller paths as parsed from /proc/&lt;pid&gt;/cgroup, under the v1 mount root.</summary>
    public CgroupV1(IReadOnlyDictionary<string, string> controllerPaths, string root = CgroupFactory.DefaultRoot)
        : this(controllerPaths, root, "/proc", HugePageSizes.DefaultDirectory)
    {
    }

    internal CgroupV1(IReadOnlyDictionary<string, string> controllerPaths, string root, string procRoot, string hugePagesDirectory)
    {
        ArgumentNullException.ThrowIfNull(controllerPaths);
        ControllerPaths = controllerPaths;
        _root = root;
        _procRoot = procRoot;
        _hugePagesDirectory = hugePagesDirectory;
        Path = controllerPaths.TryGetValue("memory", out var memory) ? memory
            : controllerPaths.Values.FirstOrDefault() ?? "/";
    }

    /// <inheritdoc/>
    public string Path { get; }

    /// <summary>Controller name (including "name=systemd") → path.</summary>
    public IReadOnlyDictionary<string, string> ControllerPaths { get; }

    /// <summary>The memory controller directory (where memory.oom_control lives), or null when the process has no memory cgroup.</summary>
    public string? MemoryDirectory => ControllerDirectory("memory");

    /// <summary>&lt;root&gt;/&lt;controller&gt;&lt;path&gt; for a controller the process belongs to, else null (existence not checked).</summary>
    public string? ControllerDirectory(string controller)
    {
        if (!ControllerPaths.TryGetValue(controller, out var path) && !ControllerPaths.TryGetValue("name=" + controller, out path))
        {
            return null;
        }
        return IOPath.Join(_root, controller, path.TrimStart('/'));
    }

    /// <summary>True while at least one of the cgroup's controller directories exists.</summary>
    public bool Exists()
    {
        foreach (var controller in ControllerPaths.Keys)
        {
            string name = controller.StartsWith("name=", StringComparison.Ordinal) ? controller["name=".Length..] : controller;
            if (ControllerDirectory(name) is { } directory && Directory.Exists(directory))
            {
                return true;
            }
        }
        return false;
    }

    /// <inheritdoc/>
    public Google.Protobuf.WellKnownTypes.Any Stats() => TypeUrls.Pack(ReadMetrics());

    /// <summary>Reads every supported controller into io.containerd.cgroups.v1.Metrics.</summary>
    public Metrics ReadMetrics()
    {
        if (!Exists())
        {
            throw Deleted();
        }
        // Upstream creates the CPU message (with both children) before asking any controller.
        var metrics = new Metrics { Cpu = new CPUStat { Usage = new CPUUsage(), Throttling = new Throttle() } };
        if (Active("cpuacct") is { } cpuacct)
        {
            ReadCpuacct(cpuacct, metrics.Cpu.Usage);
        }
        if (Active("cpu") is { } cpu)
        {
            ReadCpuThrottling(cpu, metrics.Cpu.Throttling);
        }
        if (Active("memory") is { } memory)
        {
            ReadMemory(memory, metrics);
        }
        if (Active("pids") is { } pids)
        {
            ReadPids(pids, metrics);
        }
        if (Active("blkio") is { } blkio)
        {
            metrics.Blkio = ReadBlkio(blkio, IOPath.Join(_procRoot, "partitions"));
        }
        if (Active("hugetlb") is { } hugetlb)
        {
            ReadHugetlb(hugetlb, metrics);
        }
        if (Active("rdma") is { } rdma)
        {
            ReadRdma(rdma, metrics);
        }
        if (!Exists())
        {
            throw Deleted();   // removed while we were reading: the zeros are not real
        }
        return metrics;
    }

    private ShimException Deleted() => new(ErrorKind.NotFound, $"cgroup does not exist: {Path}");

    private string? Active(string controller) =>
        ControllerDirectory(controller) is { } directory && Directory.Exists(directory) ? directory : null;

    private static void ReadCpuacct(string directory, CPUUsage usage)
    {
        if (ReadUintV1(IOPath.Join(directory, "cpuacct.usage")) is { } total)
        {
            usage.Total = total;
        }
        if (ReadKeyValues(IOPath.Join(directory, "cpuacct.stat")) is { } stat)
        {
            usage.User = stat.Get("user") * NanosecondsPerSecond / ClockTicks;
            usage.Kernel = stat.Get("system") * NanosecondsPerSecond / ClockTicks;
        }
        if (TryReadText(IOPath.Join(directory, "cpuacct.usage_percpu")) is { } perCpu)
        {
            foreach (var field in Fields(perCpu))
            {
                if (!TryParseUint(field, out ulong value))
                {
                    usage.PerCpu.Clear();   // upstream rejects the whole list
                    break;
                }
                usage.PerCpu.Add(value);
            }
        }
    }

    private static void ReadCpuThrottling(string directory, Throttle throttling)
    {
        if (ReadKeyValues(IOPath.Join(directory, "cpu.stat")) is { } stat)
        {
            throttling.Periods = stat.Get("nr_periods");
            throttling.ThrottledPeriods = stat.Get("nr_throttled");
            throttling.ThrottledTime = stat.Get("throttled_time");
        }
    }

    private static void ReadPids(string directory, Metrics metrics)
    {
        if (ReadUintV1(IOPath.Join(directory, "pids.current")) is { } current)
        {
            metrics.Pids = new PidsStat
            {
                Current = current,
                Limit = ReadUintV1(IOPath.Join(directory, "pids.max")) ?? 0,   // "max" → 0
            };
        }
    }

    private void ReadHugetlb(string directory, Metrics metrics)
    {
        foreach (var size in HugePageSizes.Read(_hugePagesDirectory))
        {
            string prefix = IOPath.Join(directory, "hugetlb." + size + ".");
            metrics.Hugetlb.Add(new HugetlbStat
            {
                Pagesize = size,
                Usage = ReadUintV1(prefix + "usage_in_bytes") ?? 0,
                Max = ReadUintV1(prefix + "max_usage_in_bytes") ?? 0,
                Failcnt = ReadUintV1(prefix + "failcnt") ?? 0,
            });
        }
    }

    private static void ReadRdma(string directory, Metrics metrics)
    {
        string? current = TryReadText(IOPath.Join(directory, "rdma.current"));
        string? max = TryReadText(IOPath.Join(directory, "rdma.max"));
        // A device removed between the two reads makes the files disagree; upstream then reports nothing.
        if (current is null || max is null || current.Split('\n').Length != max.Split('\n').Length)
        {
            return;
        }
        var rdma = new RdmaStat();
        foreach (var (device, handles, objects) in RdmaFile.Parse(current))
        {
            rdma.Current.Add(new RdmaEntry { Device = device, HcaHandles = handles, HcaObjects = objects });
        }
        foreach (var (device, handles, objects) in RdmaFile.Parse(max))
        {
            rdma.Limit.Add(new RdmaEntry { Device = device, HcaHandles = handles, HcaObjects = objects });
        }
        metrics.Rdma = rdma;
    }
}
