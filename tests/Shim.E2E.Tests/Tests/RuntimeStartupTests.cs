namespace Shim.E2E.Tests;

/// <summary>
/// The published binary's start-up on a node full of mounts. The .NET runtime's cgroup probes read
/// /proc/self/mountinfo to the end as a process starts; the shim answers them with the cgroup mounts
/// they look for (src/Shim.Host/native/cgroup_mountinfo.c), so its start does not grow with the
/// node's pods, and the runtime still reads the limits of the shim's own memory cgroup.
/// </summary>
public sealed class RuntimeStartupTests
{
    private static string ShimPath => Path.Combine(Prereqs.DistDir, Prereqs.ShimBinaryName(Prereqs.OurRuntime));

    [Fact]
    public async Task The_shim_reads_its_memory_cgroup_without_reading_the_mount_table()
    {
        string trace = Path.Combine(Path.GetTempPath(), $"rcs-strace-{Guid.NewGuid():N}");
        try
        {
            var result = await Command.RunAsync("strace", ["-f", "-e", "trace=open,openat", "-o", trace, ShimPath, "-v"],
                [], TimeSpan.FromSeconds(30), null, TestContext.Current.CancellationToken);
            Assert.True(result.ExitCode == 0, result.ToString());
            string[] opened = await File.ReadAllLinesAsync(trace, TestContext.Current.CancellationToken);
            Assert.DoesNotContain(opened, l => l.Contains("\"/proc/self/mountinfo\"", StringComparison.Ordinal));
            // the shim is in this process's cgroup: the runtime reads its memory.* files there
            string cgroup = MemoryCgroupDirectory();
            Assert.True(opened.Any(l => l.Contains($"\"{cgroup}/memory.", StringComparison.Ordinal)),
                $"the runtime read no memory.* file of {cgroup}; it opened:\n{string.Join('\n', opened.Where(l => l.Contains("cgroup", StringComparison.Ordinal)))}");
        }
        finally
        {
            File.Delete(trace);
        }
    }

    // /sys/fs/cgroup plus the cgroup2 path, or the v1 memory hierarchy plus its path (cgroups(7))
    private static string MemoryCgroupDirectory()
    {
        string[] lines = File.ReadAllLines("/proc/self/cgroup");
        if (Directory.Exists("/sys/fs/cgroup/memory"))
        {
            string memory = lines.Single(l => l.Split(':')[1].Split(',').Contains("memory"));
            return "/sys/fs/cgroup/memory" + memory[(memory.IndexOf(":/", StringComparison.Ordinal) + 1)..].TrimEnd('/');
        }
        string unified = lines.Single(l => l.StartsWith("0::", StringComparison.Ordinal));
        return "/sys/fs/cgroup" + unified[3..].TrimEnd('/');
    }
}
