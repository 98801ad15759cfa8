using Containerd.Cgroups.V1.Stats;
using static Shim.Core.Cgroups.CgroupFiles;
using IOPath = System.IO.Path;

namespace Shim.Core.Cgroups;

/// <summary>memory controller: memory.stat, memory.oom_control and the usage/limit files.</summary>
internal sealed partial class CgroupV1
{
    private static readonly (string Module, Func<MemoryStat, MemoryEntry> Entry)[] MemoryModules =
    [
        ("", m => m.Usage),
        ("memsw", m => m.Swap),
        ("kmem", m => m.Kernel),
        ("kmem.tcp", m => m.KernelTcp),
    ];

    private static void ReadMemory(string directory, Metrics metrics)
    {
        // Upstream needs memory.stat to report anything about memory.
        if (ReadKeyValues(IOPath.Join(directory, "memory.stat")) is not { } raw)
        {
            return;
        }
        var memory = new MemoryStat
        {
            Usage = new MemoryEntry(),
            Swap = new MemoryEntry(),
            Kernel = new MemoryEntry(),
            KernelTcp = new MemoryEntry(),
        };
        FillMemoryStat(raw, memory);
        metrics.Memory = memory;

        if (ReadKeyValues(IOPath.Join(directory, "memory.oom_control")) is { } oom)
        {
            metrics.MemoryOomControl = new MemoryOomControl
            {
                OomKillDisable = oom.Get("oom_kill_disable"),
                UnderOom = oom.Get("under_oom"),
                OomKill = oom.Get("oom_kill"),
            };
        }

        foreach (var (module, select) in MemoryModules)
        {
            // memory.usage_in_bytes, memory.memsw.usage_in_bytes, memory.kmem.tcp.failcnt, ...
            string prefix = IOPath.Join(directory, module.Length == 0 ? "memory." : "memory." + module + ".");
            var entry = select(memory);
            entry.Usage = ReadUintV1(prefix + "usage_in_bytes") ?? 0;
            entry.Max = ReadUintV1(prefix + "max_usage_in_bytes") ?? 0;
            entry.Failcnt = ReadUintV1(prefix + "failcnt") ?? 0;
            entry.Limit = ReadUintV1(prefix + "limit_in_bytes") ?? 0;
        }
    }

    /// <summary>memory.stat keys → MemoryStat fields (absent keys stay 0), as cgroup1 parseStats.</summary>
    internal static void FillMemoryStat(Dictionary<string, ulong> raw, MemoryStat stat)
    {
        stat.Cache = raw.Get("cache");
        stat.Rss = raw.Get("rss");
        stat.RssHuge = raw.Get("rss_huge");
        stat.MappedFile = raw.Get("mapped_file");
        stat.Dirty = raw.Get("dirty");
        stat.Writeback = raw.Get("writeback");
        stat.PgPgIn = raw.Get("pgpgin");
        stat.PgPgOut = raw.Get("pgpgout");
        stat.PgFault = raw.Get("pgfault");
        stat.PgMajFault = raw.Get("pgmajfault");
        stat.InactiveAnon = raw.Get("inactive_anon");
        stat.ActiveAnon = raw.Get("active_anon");
        stat.InactiveFile = raw.Get("inactive_file");
        stat.ActiveFile = raw.Get("active_file");
        stat.Unevictable = raw.Get("unevictable");
        stat.HierarchicalMemoryLimit = raw.Get("hierarchical_memory_limit");
        stat.HierarchicalSwapLimit = raw.Get("hierarchical_memsw_limit");
        stat.TotalCache = raw.Get("total_cache");
        stat.TotalRss = raw.Get("total_rss");
        stat.TotalRssHuge = raw.Get("total_rss_huge");
        stat.TotalMappedFile = raw.Get("total_mapped_file");
        stat.TotalDirty = raw.Get("total_dirty");
        stat.TotalWriteback = raw.Get("total_writeback");
        stat.TotalPgPgIn = raw.Get("total_pgpgin");
        stat.TotalPgPgOut = raw.Get("total_pgpgout");
        stat.TotalPgFault = raw.Get("total_pgfault");
        stat.TotalPgMajFault = raw.Get("total_pgmajfault");
        stat.TotalInactiveAnon = raw.Get("total_inactive_anon");
        stat.TotalActiveAnon = raw.Get("total_active_anon");
        stat.TotalInactiveFile = raw.Get("total_inactive_file");
        stat.TotalActiveFile = raw.Get("total_active_file");
        stat.TotalUnevictable = raw.Get("total_unevictable");
    }
}
