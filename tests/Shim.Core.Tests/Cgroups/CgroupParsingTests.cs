using Shim.Core.Cgroups;

namespace Shim.Core.Tests.Cgroups;

public sealed class CgroupParsingTests
{
    [Fact]
    public void Proc_cgroup_of_a_hybrid_host_maps_each_controller_and_the_unified_path()
    {
        const string Text = """
            12:hugetlb:/k8s/c1
            9:name=systemd:/k8s/c1
            5:cpu,cpuacct:/k8s/c1
            4:memory:/k8s/c1
            3:net_cls,net_prio:/
            0::/k8s/c1/unified

            """;
        var parsed = ProcCgroup.Parse(Text);
        Assert.Equal("/k8s/c1", parsed.Controllers["cpu"]);
        Assert.Equal("/k8s/c1", parsed.Controllers["cpuacct"]);
        Assert.Equal("/k8s/c1", parsed.Controllers["memory"]);
        Assert.Equal("/k8s/c1", parsed.Controllers["name=systemd"]);
        Assert.Equal("/", parsed.Controllers["net_prio"]);
        Assert.Equal(7, parsed.Controllers.Count);
        Assert.Equal("/k8s/c1/unified", parsed.Unified);
    }

    [Fact]
    public void Proc_cgroup_of_a_unified_host_has_only_the_v2_path()
    {
        var parsed = ProcCgroup.Parse("0::/system.slice/containerd.service\n");
        Assert.Empty(parsed.Controllers);
        Assert.Equal("/system.slice/containerd.service", parsed.Unified);
    }

    [Fact]
    public void Proc_cgroup_paths_may_contain_colons()
    {
        var parsed = ProcCgroup.Parse("0::/kubepods/pod:1/x\n4:memory:/a:b");
        Assert.Equal("/kubepods/pod:1/x", parsed.Unified);
        Assert.Equal("/a:b", parsed.Controllers["memory"]);
    }

    [Fact]
    public void Proc_cgroup_without_two_colons_is_rejected()
    {
        Assert.Throws<FormatException>(() => ProcCgroup.Parse("4:memory\n"));
    }

    [Theory]
    [InlineData("0", true, 0UL)]
    [InlineData("18446744073709551615", true, ulong.MaxValue)]
    [InlineData("-1", true, 0UL)]                     // unlimited in some files
    [InlineData("-99999999999999999999", true, 0UL)]  // below long.MinValue, still negative
    [InlineData("+5", false, 0UL)]
    [InlineData("max", false, 0UL)]
    [InlineData("", false, 0UL)]
    [InlineData("12a", false, 0UL)]
    public void Numbers_parse_as_containerd_does(string text, bool ok, ulong expected)
    {
        Assert.Equal(ok, CgroupFiles.TryParseUint(text, out ulong value));
        Assert.Equal(expected, value);
    }

    [Fact]
    public void Key_value_files_skip_malformed_lines()
    {
        var values = CgroupFiles.ParseKeyValues("a 1\nbroken\nb 2 3\nc x\n d  4 \n\n");
        Assert.Equal(new Dictionary<string, ulong> { ["a"] = 1, ["d"] = 4 }, values);
    }

    [Theory]
    [InlineData("hugepages-2048kB", "2MB")]
    [InlineData("hugepages-1048576kB", "1GB")]
    [InlineData("hugepages-64kB", "64KB")]
    [InlineData("hugepages-32768kB", "32MB")]
    [InlineData("hugepages-16777216kB", "16GB")]
    [InlineData("hugepages-2048MB", null)]
    [InlineData("other", null)]
    public void Huge_page_directory_names_become_cgroup_size_names(string name, string? expected)
    {
        Assert.Equal(expected, HugePageSizes.FromDirectoryName(name));
    }

    [Fact]
    public void Huge_page_sizes_are_listed_in_name_order_and_missing_directory_is_empty()
    {
        using var tree = new FixtureTree();
        Directory.CreateDirectory(tree.PathOf("hp/hugepages-2048kB"));
        Directory.CreateDirectory(tree.PathOf("hp/hugepages-1048576kB"));
        Assert.Equal(["1GB", "2MB"], HugePageSizes.Read(tree.PathOf("hp")));
        Assert.Empty(HugePageSizes.Read(tree.PathOf("none")));
    }

    [Fact]
    public void Partitions_map_device_numbers_to_dev_names_first_one_winning()
    {
        const string Text = "major minor  #blocks  name\n\n   8        0  1000 sda\n   8        1   500 sda1\n 254 0 268435456 vda\n   8 0 1 dup\n";
        var devices = Shim.Core.Cgroups.CgroupV1.ParsePartitions(Text);
        Assert.Equal("/dev/sda", devices[(8, 0)]);
        Assert.Equal("/dev/sda1", devices[(8, 1)]);
        Assert.Equal("/dev/vda", devices[(254, 0)]);
        Assert.Equal(3, devices.Count);
    }

    [Fact]
    public void Io_stat_lines_become_entries_per_device()
    {
        const string Text = "254:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=5 dios=6\n8:16 rbytes=10 wbytes=0 rios=1 wios=0 dbytes=0 dios=0\n";
        var entries = Shim.Core.Cgroups.CgroupV2.ParseIoStat(Text);
        Assert.Equal(2, entries.Count);
        Assert.Equal((254UL, 0UL, 1UL, 2UL, 3UL, 4UL), (entries[0].Major, entries[0].Minor, entries[0].Rbytes, entries[0].Wbytes, entries[0].Rios, entries[0].Wios));
        Assert.Equal((8UL, 16UL, 10UL), (entries[1].Major, entries[1].Minor, entries[1].Rbytes));
    }

    [Fact]
    public void Pressure_files_parse_some_and_full_and_reject_garbage()
    {
        var psi = Shim.Core.Cgroups.CgroupV2.ParsePsi("some avg10=1.50 avg60=0.25 avg300=0.00 total=123456\nfull avg10=0.00 avg60=0.00 avg300=0.10 total=42\n");
        Assert.NotNull(psi);
        Assert.Equal(1.5, psi.Some.Avg10);
        Assert.Equal(0.25, psi.Some.Avg60);
        Assert.Equal(123456UL, psi.Some.Total);
        Assert.Equal(0.1, psi.Full.Avg300);
        Assert.Equal(42UL, psi.Full.Total);
        Assert.Null(Shim.Core.Cgroups.CgroupV2.ParsePsi("some avg10=x\n"));
        Assert.Null(Shim.Core.Cgroups.CgroupV2.ParsePsi("some avg10\n"));
    }

    [Fact]
    public void Rdma_lines_parse_max_as_uint_max()
    {
        var entries = RdmaFile.Parse("mlx4_0 hca_handle=2 hca_object=2000\nmlx4_1 hca_handle=max hca_object=max\nbad line\n").ToList();
        Assert.Equal([("mlx4_0", 2u, 2000u), ("mlx4_1", uint.MaxValue, uint.MaxValue)], entries);
    }

    [Fact]
    public void Mode_detection_reads_filesystem_types()
    {
        using var tree = new FixtureTree();
        Assert.Equal(CgroupMode.Unavailable, CgroupModes.Detect("/nonexistent"));
        Assert.Equal(CgroupMode.Legacy, CgroupModes.Detect(tree.Root));
        if (Shim.Os.Notify.FileSystems.TryGetMagic("/sys/fs/cgroup/unified") == Shim.Os.Notify.FileSystems.CGROUP2_SUPER_MAGIC)
        {
            // this machine: tmpfs at /sys/fs/cgroup with v1 controllers and cgroup2 at unified/
            Assert.Equal(CgroupMode.Hybrid, CgroupModes.Detect("/sys/fs/cgroup"));
            Assert.Equal(CgroupMode.Unified, CgroupModes.Detect("/sys/fs/cgroup/unified"));
            Assert.False(CgroupModes.Detect("/sys/fs/cgroup").IsV2());
        }
        else if (Shim.Os.Notify.FileSystems.TryGetMagic("/sys/fs/cgroup") == Shim.Os.Notify.FileSystems.CGROUP2_SUPER_MAGIC)
        {
            Assert.Equal(CgroupMode.Unified, CgroupModes.Detect("/sys/fs/cgroup"));
        }
    }
}
