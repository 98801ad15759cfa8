using Containerd.Cgroups.V1.Stats;
using Shim.Core.Cgroups;
using Shim.Core.Errors;
using Shim.Protos;

namespace Shim.Core.Tests.Cgroups;

public sealed class CgroupV1FixtureTests : IDisposable
{
    private readonly FixtureTree _tree = new();

    public CgroupV1FixtureTests()
    {
        _tree.Write("proc/partitions", "major minor  #blocks  name\n\n   8        0  1000 sda\n 254        0  268435456 vda\n");
        Directory.CreateDirectory(_tree.PathOf("hugepages/hugepages-2048kB"));
        Directory.CreateDirectory(_tree.PathOf("hugepages/hugepages-1048576kB"));
    }

    public void Dispose() => _tree.Dispose();

    [Fact]
    public void Cpu_usage_comes_from_cpuacct_and_throttling_from_cpu_stat()
    {
        _tree.Write("cg/cpuacct/c1/cpuacct.usage", "123456789\n");
        _tree.Write("cg/cpuacct/c1/cpuacct.stat", "user 150\nsystem 50\n");
        _tree.Write("cg/cpuacct/c1/cpuacct.usage_percpu", "100 200 300 \n");
        _tree.Write("cg/cpu/c1/cpu.stat", "nr_periods 10\nnr_throttled 2\nthrottled_time 3000\nnr_bursts 0\n");

        var m = Load().ReadMetrics();

        Assert.Equal(123456789UL, m.Cpu.Usage.Total);
        Assert.Equal(1_500_000_000UL, m.Cpu.Usage.User);     // ticks * 1e9 / USER_HZ(100)
        Assert.Equal(500_000_000UL, m.Cpu.Usage.Kernel);
        Assert.Equal([100UL, 200UL, 300UL], m.Cpu.Usage.PerCpu);
        Assert.Equal(new Throttle { Periods = 10, ThrottledPeriods = 2, ThrottledTime = 3000 }, m.Cpu.Throttling);
    }

    [Fact]
    public void Memory_fills_stat_fields_entries_and_oom_control()
    {
        _tree.Write("cg/memory/c1/memory.stat", """
            cache 40960
            rss 1048576
            rss_huge 2097152
            shmem 0
            mapped_file 8192
            dirty 4096
            writeback 12
            swap 0
            pgpgin 4069
            pgpgout 4059
            pgfault 4169
            pgmajfault 9
            inactive_anon 11
            active_anon 12
            inactive_file 13
            active_file 14
            unevictable 15
            hierarchical_memory_limit 16777216
            hierarchical_memsw_limit 33554432
            total_cache 18
            total_rss 19
            total_rss_huge 20
            total_shmem 0
            total_mapped_file 21
            total_dirty 22
            total_writeback 23
            total_swap 0
            total_pgpgin 24
            total_pgpgout 25
            total_pgfault 26
            total_pgmajfault 27
            total_inactive_anon 28
            total_active_anon 29
            total_inactive_file 30
            total_active_file 31
            total_unevictable 32

            """);
        _tree.Write("cg/memory/c1/memory.oom_control", "oom_kill_disable 1\nunder_oom 0\noom_kill 4\n");
        _tree.Write("cg/memory/c1/memory.usage_in_bytes", "1000\n");
        _tree.Write("cg/memory/c1/memory.max_usage_in_bytes", "2000\n");
        _tree.Write("cg/memory/c1/memory.failcnt", "3\n");
        _tree.Write("cg/memory/c1/memory.limit_in_bytes", "9223372036854771712\n");
        // no memsw files: swap accounting off; that entry stays zero, the others are still read
        _tree.Write("cg/memory/c1/memory.kmem.usage_in_bytes", "500\n");
        _tree.Write("cg/memory/c1/memory.kmem.max_usage_in_bytes", "600\n");
        _tree.Write("cg/memory/c1/memory.kmem.failcnt", "0\n");
        _tree.Write("cg/memory/c1/memory.kmem.limit_in_bytes", "-1\n");
        _tree.Write("cg/memory/c1/memory.kmem.tcp.usage_in_bytes", "7\n");
        _tree.Write("cg/memory/c1/memory.kmem.tcp.max_usage_in_bytes", "8\n");
        _tree.Write("cg/memory/c1/memory.kmem.tcp.failcnt", "9\n");
        _tree.Write("cg/memory/c1/memory.kmem.tcp.limit_in_bytes", "10\n");

        var m = Load().ReadMetrics();

        var expected = new MemoryStat
        {
            Cache = 40960, Rss = 1048576, RssHuge = 2097152, MappedFile = 8192, Dirty = 4096, Writeback = 12,
            PgPgIn = 4069, PgPgOut = 4059, PgFault = 4169, PgMajFault = 9,
            InactiveAnon = 11, ActiveAnon = 12, InactiveFile = 13, ActiveFile = 14, Unevictable = 15,
            HierarchicalMemoryLimit = 16777216, HierarchicalSwapLimit = 33554432,
            TotalCache = 18, TotalRss = 19, TotalRssHuge = 20, TotalMappedFile = 21, TotalDirty = 22, TotalWriteback = 23,
            TotalPgPgIn = 24, TotalPgPgOut = 25, TotalPgFault = 26, TotalPgMajFault = 27,
            TotalInactiveAnon = 28, TotalActiveAnon = 29, TotalInactiveFile = 30, TotalActiveFile = 31, TotalUnevictable = 32,
            Usage = new MemoryEntry { Usage = 1000, Max = 2000, Failcnt = 3, Limit = 9223372036854771712 },
            Swap = new MemoryEntry(),
            Kernel = new MemoryEntry { Usage = 500, Max = 600, Failcnt = 0, Limit = 0 },   // -1 reads as 0
            KernelTcp = new MemoryEntry { Usage = 7, Max = 8, Failcnt = 9, Limit = 10 },
        };
        Assert.Equal(expected, m.Memory);
        Assert.Equal(new MemoryOomControl { OomKillDisable = 1, UnderOom = 0, OomKill = 4 }, m.MemoryOomControl);
    }

    [Fact]
    public void Memory_without_memory_stat_is_not_reported()
    {
        _tree.Write("cg/memory/c1/memory.usage_in_bytes", "1000\n");
        var m = Load().ReadMetrics();
        Assert.Null(m.Memory);
        Assert.Null(m.MemoryOomControl);
    }

    [Fact]
    public void Pids_max_reads_as_zero_in_v1()
    {
        _tree.Write("cg/pids/c1/pids.current", "3\n");
        _tree.Write("cg/pids/c1/pids.max", "max\n");
        Assert.Equal(new PidsStat { Current = 3, Limit = 0 }, Load().ReadMetrics().Pids);

        _tree.Write("cg/pids/c1/pids.max", "512\n");
        Assert.Equal(new PidsStat { Current = 3, Limit = 512 }, Load().ReadMetrics().Pids);
    }

    [Fact]
    public void Blkio_falls_back_to_throttle_files_without_cfq_statistics()
    {
        _tree.Write("cg/blkio/c1/blkio.throttle.io_service_bytes", "8:0 Read 4096\n8:0 Write 8192\n8:0 Sync 0\n8:0 Async 12288\n8:0 Discard 0\n8:0 Total 12288\n254:0 Read 1\nTotal 12289\n");
        _tree.Write("cg/blkio/c1/blkio.throttle.io_serviced", "8:0 Read 1\n8:0 Write 2\nTotal 3\n");
        _tree.Write("cg/blkio/c1/blkio.bfq.io_serviced_recursive", "8:0 Read 99\n");   // not read by upstream either

        var blkio = Load().ReadMetrics().Blkio;

        Assert.Equal(7, blkio.IoServiceBytesRecursive.Count);
        Assert.Equal(new BlkIOEntry { Op = "Read", Device = "/dev/sda", Major = 8, Minor = 0, Value = 4096 }, blkio.IoServiceBytesRecursive[0]);
        Assert.Equal(new BlkIOEntry { Op = "Total", Device = "/dev/sda", Major = 8, Minor = 0, Value = 12288 }, blkio.IoServiceBytesRecursive[5]);
        Assert.Equal(new BlkIOEntry { Op = "Read", Device = "/dev/vda", Major = 254, Minor = 0, Value = 1 }, blkio.IoServiceBytesRecursive[6]);
        Assert.Equal([1UL, 2UL], blkio.IoServicedRecursive.Select(e => e.Value));
        Assert.Empty(blkio.IoQueuedRecursive);
        Assert.Empty(blkio.SectorsRecursive);
    }

    [Fact]
    public void Blkio_uses_cfq_recursive_files_when_they_have_entries()
    {
        _tree.Write("cg/blkio/c1/blkio.io_serviced_recursive", "8:0 Read 5\n8:0 Write 6\nTotal 11\n");
        _tree.Write("cg/blkio/c1/blkio.io_service_bytes_recursive", "8:0 Read 500\n");
        _tree.Write("cg/blkio/c1/blkio.sectors_recursive", "8:0 77\n");
        _tree.Write("cg/blkio/c1/blkio.time_recursive", "8:0 1234\n");
        _tree.Write("cg/blkio/c1/blkio.throttle.io_service_bytes", "8:0 Read 1\n");

        var blkio = Load().ReadMetrics().Blkio;

        Assert.Equal([5UL, 6UL], blkio.IoServicedRecursive.Select(e => e.Value));
        Assert.Equal([500UL], blkio.IoServiceBytesRecursive.Select(e => e.Value));
        Assert.Equal(new BlkIOEntry { Op = "", Device = "/dev/sda", Major = 8, Minor = 0, Value = 77 }, Assert.Single(blkio.SectorsRecursive));
        Assert.Equal(1234UL, Assert.Single(blkio.IoTimeRecursive).Value);
    }

    [Fact]
    public void Blkio_with_empty_cfq_files_falls_back_to_throttle_files()
    {
        _tree.Write("cg/blkio/c1/blkio.io_serviced_recursive", "Total 0\n");
        _tree.Write("cg/blkio/c1/blkio.throttle.io_serviced", "8:0 Read 9\n");
        Assert.Equal([9UL], Load().ReadMetrics().Blkio.IoServicedRecursive.Select(e => e.Value));
    }

    [Fact]
    public void Hugetlb_is_reported_per_host_page_size()
    {
        _tree.Write("cg/hugetlb/c1/hugetlb.2MB.usage_in_bytes", "2097152\n");
        _tree.Write("cg/hugetlb/c1/hugetlb.2MB.max_usage_in_bytes", "4194304\n");
        _tree.Write("cg/hugetlb/c1/hugetlb.2MB.failcnt", "1\n");
        _tree.Write("cg/hugetlb/c1/hugetlb.1GB.usage_in_bytes", "0\n");
        _tree.Write("cg/hugetlb/c1/hugetlb.1GB.max_usage_in_bytes", "0\n");
        _tree.Write("cg/hugetlb/c1/hugetlb.1GB.failcnt", "0\n");

        var hugetlb = Load().ReadMetrics().Hugetlb;

        Assert.Equal(
            [new HugetlbStat { Pagesize = "1GB" }, new HugetlbStat { Pagesize = "2MB", Usage = 2097152, Max = 4194304, Failcnt = 1 }],
            hugetlb);
    }

    [Fact]
    public void Missing_controllers_leave_their_messages_out_but_cpu_is_always_present()
    {
        _tree.Write("cg/pids/c1/pids.current", "1\n");
        var m = Load().ReadMetrics();
        Assert.NotNull(m.Cpu);
        Assert.Equal(new CPUUsage(), m.Cpu.Usage);
        Assert.Equal(new Throttle(), m.Cpu.Throttling);
        Assert.Null(m.Memory);
        Assert.Null(m.Blkio);
        Assert.Empty(m.Hugetlb);
        Assert.Null(m.Rdma);
    }

    [Fact]
    public void Rdma_current_and_max_are_read_together()
    {
        _tree.Write("cg/rdma/c1/rdma.current", "mlx4_0 hca_handle=2 hca_object=2000\n");
        _tree.Write("cg/rdma/c1/rdma.max", "mlx4_0 hca_handle=max hca_object=max\n");
        var rdma = Load().ReadMetrics().Rdma;
        Assert.Equal(new RdmaEntry { Device = "mlx4_0", HcaHandles = 2, HcaObjects = 2000 }, Assert.Single(rdma.Current));
        Assert.Equal(new RdmaEntry { Device = "mlx4_0", HcaHandles = uint.MaxValue, HcaObjects = uint.MaxValue }, Assert.Single(rdma.Limit));
    }

    [Fact]
    public void Stats_packs_v1_metrics_with_containerds_type_url()
    {
        _tree.Write("cg/pids/c1/pids.current", "2\n");
        var any = Load().Stats();
        Assert.Equal("io.containerd.cgroups.v1.Metrics", any.TypeUrl);
        Assert.True(TypeUrls.TryUnpack<Metrics>(any, out var m));
        Assert.Equal(2UL, m.Pids.Current);
    }

    [Fact]
    public void A_cgroup_whose_directories_are_gone_is_not_found()
    {
        var ex = Assert.Throws<ShimException>(() => Load().ReadMetrics());
        Assert.Equal(ErrorKind.NotFound, ex.Kind);
        Assert.Contains("cgroup does not exist", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Factory_reads_proc_pid_cgroup_and_builds_a_v1_cgroup_with_the_memory_path()
    {
        _tree.Write("proc/42/cgroup", "9:name=systemd:/c1\n4:memory:/c1\n2:cpu,cpuacct:/c1\n0::/\n");
        _tree.Write("cg/pids/c1/pids.current", "2\n");
        var cgroup = Assert.IsType<Shim.Core.Cgroups.CgroupV1>(CgroupFactory.ForPid(42, CgroupMode.Hybrid, _tree.PathOf("cg"), _tree.PathOf("proc")));
        Assert.Equal("/c1", cgroup.Path);
        Assert.Equal(_tree.PathOf("cg/memory/c1"), cgroup.MemoryDirectory);
        Assert.Equal(_tree.PathOf("cg/systemd/c1"), cgroup.ControllerDirectory("systemd"));

        var missing = Assert.Throws<ShimException>(() => CgroupFactory.ForPid(43, CgroupMode.Hybrid, _tree.PathOf("cg"), _tree.PathOf("proc")));
        Assert.Equal(ErrorKind.NotFound, missing.Kind);
    }

    private Shim.Core.Cgroups.CgroupV1 Load()
    {
        var paths = new Dictionary<string, string>
        {
            ["cpu"] = "/c1", ["cpuacct"] = "/c1", ["memory"] = "/c1", ["pids"] = "/c1",
            ["blkio"] = "/c1", ["hugetlb"] = "/c1", ["rdma"] = "/c1", ["name=systemd"] = "/c1",
        };
        return new Shim.Core.Cgroups.CgroupV1(paths, _tree.PathOf("cg"), _tree.PathOf("proc"), _tree.PathOf("hugepages"));
    }
}
