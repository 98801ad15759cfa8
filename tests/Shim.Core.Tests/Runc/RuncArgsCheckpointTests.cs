using Shim.Runc;
using Shim.Os.Terminals;

namespace Shim.Core.Tests.Runc;

public class RuncArgsCheckpointTests
{
    private static readonly RuncConfig Config = new("/usr/sbin/runc", "/run/containerd/runc/ns1", "/b/log.json");

    [Fact]
    public void Checkpoint_with_defaults_leaves_the_container_running()
    {
        Assert.Equal(["checkpoint", "--image-path", "/img", "--work-path", "/b/work/criu-work", "--leave-running", "c1"],
            RuncArgs.Checkpoint(Config, "c1", new CheckpointOptions("/img", "/b/work/criu-work") { LeaveRunning = true }).Skip(7));
    }

    [Fact]
    public void Checkpoint_spells_every_criu_flag_in_go_runcs_order_and_repeats_empty_ns()
    {
        var options = new CheckpointOptions("/img", "/w")
        {
            ParentPath = "/parent",
            TcpEstablished = true,
            ExternalUnixSockets = true,
            ShellJob = true,
            FileLocks = true,
            EmptyNamespaces = ["network", "ipc"],
        };
        Assert.Equal(
            ["checkpoint", "--image-path", "/img", "--work-path", "/w", "--parent-path", "/parent", "--tcp-established", "--ext-unix-sk",
             "--shell-job", "--file-locks", "--empty-ns", "network", "--empty-ns", "ipc", "c1"],
            RuncArgs.Checkpoint(Config, "c1", options).Skip(7));
    }

    [Fact]
    public void Restore_is_detached_without_subreaper_with_the_init_pid_file_and_bundle_last()
    {
        Assert.Equal(
            ["restore", "--image-path", "/img", "--detach", "--pid-file", "/b/init.pid", "--no-subreaper", "--bundle", "/b", "c1"],
            RuncArgs.Restore(Config, "c1", new RestoreOptions("/img", "/b", "/b/init.pid")).Skip(7));
    }

    [Fact]
    public void Restore_with_crun_leaves_out_no_subreaper_which_crun_does_not_know()
    {
        Assert.Equal(
            ["restore", "--image-path", "/img", "--detach", "--pid-file", "/b/init.pid", "--bundle", "/b", "c1"],
            RuncArgs.Restore(Config, "c1", new RestoreOptions("/img", "/b", "/b/init.pid"), RuntimeFlavour.Crun).Skip(7));
    }

    [Theory]
    [InlineData("runc version 1.3.6\ncommit: v1.3.6-0\nspec: 1.2.1\ngo: go1.24\nlibseccomp: 2.6.0\n", "Runc")]
    [InlineData("runc version 1.1.5+ds1\ncommit: 1.1.5+ds1-1+deb12u1\n", "Runc")]
    [InlineData("crun version 1.21\ncommit: 10269840aa07fb7e6b7e1acff6198692d8ff5c88\nrundir: /run/crun\nspec: 1.0.0\n", "Crun")]
    [InlineData("crun version 1.8.1\n", "Crun")]
    [InlineData("youki version 0.5.0\n", "Runc")]
    [InlineData("", "Runc")]
    [InlineData("crunch 1\n", "Runc")]
    public void The_flavour_is_the_first_word_of_version_and_anything_but_crun_is_taken_for_runc(string output, string flavour) =>
        Assert.Equal(flavour, RuntimeFlavours.FromVersion(System.Text.Encoding.UTF8.GetBytes(output)).ToString());

    [Fact]
    public void Restore_passes_work_and_parent_paths_console_socket_and_no_pivot()
    {
        var options = new RestoreOptions("/img", "/b", "/b/init.pid") { WorkPath = "/w", ParentPath = "/p", ConsoleSocket = "/tmp/pty.sock", NoPivot = true };
        Assert.Equal(
            ["restore", "--image-path", "/img", "--work-path", "/w", "--parent-path", "/p", "--detach", "--pid-file", "/b/init.pid",
             "--console-socket", "/tmp/pty.sock", "--no-pivot", "--no-subreaper", "--bundle", "/b", "c1"],
            RuncArgs.Restore(Config, "c1", options).Skip(7));
    }
}
