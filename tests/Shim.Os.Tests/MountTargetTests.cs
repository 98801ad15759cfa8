using Shim.Os.Tests.Support;
using Shim.Os.Mounting;

namespace Shim.Os.Tests;

public sealed class MountTargetTests
{
    [Theory]
    [InlineData("", "")]
    [InlineData("/", "")]
    [InlineData("/proc", "proc")]
    [InlineData("a/../b", "a/../b")]
    [InlineData("./a/./b/..", "./a/./b/..")]
    public void Targets_that_stay_inside_are_taken_relative_to_the_rootfs(string target, string expected)
    {
        Assert.Equal(expected, MountTarget.Relative(target));
    }

    [Theory]
    [InlineData("..")]
    [InlineData("/../etc")]
    [InlineData("a/../../etc")]
    public void A_target_whose_dotdot_climbs_above_the_rootfs_is_refused(string target)
    {
        var ex = Assert.Throws<FormatException>(() => MountTarget.Relative(target));
        Assert.Equal($"target \"{target}\" leads out of the rootfs", ex.Message);
    }

    [Fact]
    public void Symlinks_are_resolved_inside_the_rootfs_absolute_or_relative()
    {
        using var dir = TestIo.CreateTempDir();
        string root = dir.Combine("root");
        Directory.CreateDirectory(Path.Combine(root, "etc"));
        File.CreateSymbolicLink(Path.Combine(root, "abs"), "/etc");
        File.CreateSymbolicLink(Path.Combine(root, "rel"), "../../../../../etc");

        foreach (string link in new[] { "abs", "rel" })
        {
            using var fd = MountTarget.Open(root, link);
            Assert.Equal(Path.Combine(root, "etc"), Mounts.RealPath(MountTarget.ProcPath(fd)));
        }
    }

    [Fact]
    public void A_symlink_to_a_host_directory_the_rootfs_lacks_does_not_resolve()
    {
        using var dir = TestIo.CreateTempDir();
        string root = dir.Combine("root");
        string host = dir.Combine("host-only");
        Directory.CreateDirectory(root);
        Directory.CreateDirectory(host);
        File.CreateSymbolicLink(Path.Combine(root, "out"), host);

        var ex = Assert.Throws<ErrnoException>(() => MountTarget.Open(root, "out"));
        Assert.Equal(2, ex.Errno);
        Assert.Equal("resolve target out in the rootfs", ex.Operation);
    }
}
