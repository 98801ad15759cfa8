using Containerd.Cgroups.V2.Stats;
using Shim.Core.Cgroups;
using Shim.Core.Errors;
using Shim.Protos;

namespace Shim.Core.Tests.Cgroups;

public sealed class CgroupV2FixtureTests : IDisposable
{
    // memory.stat of a 6.x kernel (trimmed values, every key the kernel prints)
    private const string MemoryStat = """
        anon 1
        file 2
        kernel 300
        kernel_stack 3
        pagetables 301
        sec_pagetables 0
        percpu 302
        sock 5
        vmalloc 0
        shmem 6
        zswap 0
        zswapped 0
        file_mapped 7
        file_dirty 8
        file_writeback 9
        swapcached 0
        anon_thp 10
        file_thp 0
        shmem_thp 0
        inactive_anon 11
        active_anon 12
        inactive_file 13
        active_file 14
        unevictable 15
        slab_reclaimable 16
        slab_unreclaimable 17
        slab 4
        workingset_refault_anon 39
        workingset_refault_file 40
        workingset_activate_anon 41
        workingset_activate_file 42
        workingset_restore_anon 0
        workingset_restore_file 0
        workingset_nodereclaim 22
        pgscan 24
        pgsteal 25
        pgscan_kswapd 0
        pgscan_direct 0
        pgsteal_kswapd 0
        pgsteal_direct 0
        pgfault 18
        pgmajfault 19
        pgrefill 23
        pgactivate 26
        pgdeactivate 27
        pglazyfree 28
        pglazyfreed 29
        zswpin 0
        zswpout 0
        thp_fault_alloc 30
        thp_collapse_alloc 31

        """;

    private readonly FixtureTree _tree = new();

    public CgroupV2FixtureTests() => Directory.CreateDirectory(_tree.PathOf("hugepages/hugepages-2048kB"));

    public void Dispose() => _tree.Dispose();

    [Fact]
    public void A_full_cgroup_directory_fills_every_message_as_containerd_does()
    {
        Write("cgroup.events", "populated 1\nfrozen 0\n");
        Write("pids.current", "4\n");
        Write("pids.max", "max\n");
        Write("cpu.stat", "usage_usec 1000\nuser_usec 600\nsystem_usec 400\nnr_periods 5\nnr_throttled 1\nthrottled_usec 70\nnr_bursts 2\nburst_usec 30\n");
        Write("cpu.pressure", "some avg10=0.50 avg60=0.10 avg300=0.00 total=1234\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=567\n");
        Write("memory.stat", MemoryStat);
        Write("memory.current", "8388608\n");
        Write("memory.max", "16777216\n");
        Write("memory.peak", "9437184\n");
        Write("memory.swap.current", "0\n");
        Write("memory.swap.max", "max\n");
        Write("memory.events", "low 0\nhigh 1\nmax 2\noom 3\noom_kill 4\noom_group_kill 5\n");
        Write("memory.pressure", "some avg10=0.00 avg60=0.00 avg300=0.00 total=9\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=8\n");
        Write("io.stat", "254:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n");
        Write("io.pressure", "some avg10=0.00 avg60=0.00 avg300=0.00 total=1\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=1\n");
        Write("hugetlb.2MB.current", "2097152\n");
        Write("hugetlb.2MB.max", "max\n");
        Write("hugetlb.2MB.events", "max 3\n");
        Write("rdma.current", "mlx4_0 hca_handle=1 hca_object=20\n");
        Write("rdma.max", "mlx4_0 hca_handle=max hca_object=100\n");

        var m = Load().ReadMetrics();

        Assert.Equal(new PidsStat { Current = 4, Limit = ulong.MaxValue }, m.Pids);   // v2: "max" → MaxUint64
        Assert.Equal(new CPUStat
        {
            UsageUsec = 1000, UserUsec = 600, SystemUsec = 400, NrPeriods = 5, NrThrottled = 1, ThrottledUsec = 70,
            NrBursts = 2, BurstUsec = 30,
            Psi = new PSIStats
            {
                Some = new PSIData { Avg10 = 0.5, Avg60 = 0.1, Total = 1234 },
                Full = new PSIData { Total = 567 },
            },
        }, m.Cpu);
        Assert.Equal(new MemoryStat
        {
            Anon = 1, File = 2, KernelStack = 3, Slab = 4, Sock = 5, Shmem = 6, FileMapped = 7, FileDirty = 8,
            FileWriteback = 9, AnonThp = 10, InactiveAnon = 11, ActiveAnon = 12, InactiveFile = 13, ActiveFile = 14,
            Unevictable = 15, SlabReclaimable = 16, SlabUnreclaimable = 17, Pgfault = 18, Pgmajfault = 19,
            WorkingsetNodereclaim = 22, Pgrefill = 23, Pgscan = 24, Pgsteal = 25, Pgactivate = 26, Pgdeactivate = 27,
            Pglazyfree = 28, Pglazyfreed = 29, ThpFaultAlloc = 30, ThpCollapseAlloc = 31,
            WorkingsetRefaultAnon = 39, WorkingsetRefaultFile = 40, WorkingsetActivateAnon = 41, WorkingsetActivateFile = 42,
            Usage = 8388608, UsageLimit = 16777216, MaxUsage = 9437184, SwapUsage = 0, SwapLimit = ulong.MaxValue, SwapMaxUsage = 0,
            Psi = new PSIStats { Some = new PSIData { Total = 9 }, Full = new PSIData { Total = 8 } },
        }, m.Memory);
        Assert.Equal(new MemoryEvents { Low = 0, High = 1, Max = 2, Oom = 3, OomKill = 4, OomGroupKill = 5 }, m.MemoryEvents);
        Assert.Equal(new IOEntry { Major = 254, Minor = 0, Rbytes = 4096, Wbytes = 8192, Rios = 1, Wios = 2 }, Assert.Single(m.Io.Usage));
        Assert.Equal(1UL, m.Io.Psi.Some.Total);
        Assert.Equal(new HugeTlbStat { Pagesize = "2MB", Current = 2097152, Max = ulong.MaxValue, Failcnt = 3 }, Assert.Single(m.Hugetlb));
        Assert.Equal(new RdmaEntry { Device = "mlx4_0", HcaHandles = 1, HcaObjects = 20 }, Assert.Single(m.Rdma.Current));
        Assert.Equal(new RdmaEntry { Device = "mlx4_0", HcaHandles = uint.MaxValue, HcaObjects = 100 }, Assert.Single(m.Rdma.Limit));
    }

    [Fact]
    public void An_empty_cgroup_directory_gives_the_messages_upstream_always_sends_with_zeros()
    {
        Directory.CreateDirectory(_tree.PathOf("cg/c2"));

        var m = Load().ReadMetrics();

        Assert.Equal(new PidsStat(), m.Pids);
        Assert.Equal(new CPUStat(), m.Cpu);            // no psi either
        Assert.Equal(new MemoryStat(), m.Memory);      // no memory.stat: not even usage
        Assert.Null(m.MemoryEvents);
        Assert.Equal(new IOStat(), m.Io);
        Assert.Equal(new RdmaStat(), m.Rdma);
        Assert.Equal(new HugeTlbStat { Pagesize = "2MB" }, Assert.Single(m.Hugetlb));   // one per host page size
    }

    [Fact]
    public void Stats_packs_v2_metrics_with_containerds_type_url()
    {
        Write("pids.current", "1\n");
        var any = Load().Stats();
        Assert.Equal("io.containerd.cgroups.v2.Metrics", any.TypeUrl);
        Assert.True(TypeUrls.TryUnpack<Metrics>(any, out var m));
        Assert.Equal(1UL, m.Pids.Current);
    }

    [Fact]
    public void A_removed_cgroup_is_not_found()
    {
        var ex = Assert.Throws<ShimException>(() => Load().ReadMetrics());
        Assert.Equal(ErrorKind.NotFound, ex.Kind);
    }

    [Fact]
    public void Factory_in_unified_mode_uses_the_zero_line()
    {
        _tree.Write("proc/7/cgroup", "0::/c2\n");
        var cgroup = Assert.IsType<Shim.Core.Cgroups.CgroupV2>(CgroupFactory.ForPid(7, CgroupMode.Unified, _tree.PathOf("cg"), _tree.PathOf("proc")));
        Assert.Equal("/c2", cgroup.Path);
        Assert.Equal(_tree.PathOf("cg/c2"), cgroup.Directory);
    }

    private void Write(string file, string content) => _tree.Write("cg/c2/" + file, content);

    private Shim.Core.Cgroups.CgroupV2 Load() => new("/c2", _tree.PathOf("cg"), _tree.PathOf("hugepages"));
}
