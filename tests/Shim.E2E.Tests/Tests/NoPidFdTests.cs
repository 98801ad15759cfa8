namespace Shim.E2E.Tests;

/// <summary>
/// A shim that cannot open pidfds (pidfd_open answers ENOSYS, as on a kernel before 5.3; EMFILE
/// under a descriptor limit ends the same way): an exec is still signalled, by its pid, while it
/// is the shim's unreaped child, and its exit is reported. The shim runs under a seccomp filter
/// (python3-seccomp, Debian's binding of libseccomp) that refuses that one call.
/// </summary>
public sealed class NoPidFdTests : E2ETest
{
    private const string NoPidFdRuntime = "io.containerd.rcsnopidfd.v2";

    // installs the filter (kept without no_new_privs: the shim and runc run as they would) and execs the shim
    private const string Launcher = """
        import errno, os, sys, seccomp
        f = seccomp.SyscallFilter(seccomp.ALLOW)
        f.set_attr(seccomp.Attr.CTL_NNP, 0)
        f.add_rule(seccomp.ERRNO(errno.ENOSYS), "pidfd_open")
        f.load()
        os.execv(sys.argv[1], sys.argv[1:])
        """;

    [Fact]
    public async Task Without_pidfds_kill_signals_a_running_exec_by_pid_and_its_exit_is_reported()
    {
        string launcher = Path.Combine(TempDir("rcs-nopidfd-"), "no-pidfd.py");
        await File.WriteAllTextAsync(launcher, Launcher, Ct);
        var runtime = WrappedShim.Install(Ctrd, NoPidFdRuntime, new Dictionary<string, string>(), ["/usr/bin/python3", launcher]);
        (await CtrAsync(RunThrough(runtime, "np", detach: true, "sleep", "600"))).EnsureSuccess();

        await using var exec = StartCtr(["task", "exec", "--fifo-dir", Ctrd.FifoDir, "--exec-id", "e1", "np", "sh", "-c", "echo started; exec sleep 600"]);
        var started = new byte[8];
        await exec.Stdout.ReadExactlyAsync(started, Ct);
        Assert.Equal("started\n", System.Text.Encoding.ASCII.GetString(started));

        var kill = await CtrAsync("task", "kill", "--exec-id", "e1", "np");
        Assert.True(kill.ExitCode == 0, $"kill of the running exec: {kill.Describe()}");
        Assert.Equal(128 + 15, await exec.WaitAsync(TimeSpan.FromSeconds(30), Ct));   // SIGTERM, as ctr reports it

        // once the exec is gone, its pid is no longer signalled
        var again = await CtrAsync("task", "kill", "--exec-id", "e1", "np");
        Assert.True(again.ExitCode != 0, $"a kill of the finished exec should fail: {again.Describe()}");
        if (!Prereqs.IsStockRuntime)
        {
            Assert.Contains("pidfd_open failed", Ctrd.ReadLog(), StringComparison.Ordinal);
        }

        (await CtrAsync("task", "kill", "-s", "SIGKILL", "np")).EnsureSuccess();
        for (var until = DateTime.UtcNow.AddSeconds(30); (await CtrAsync("task", "delete", "np")).ExitCode != 0;)
        {
            Assert.True(DateTime.UtcNow < until, "the container could not be deleted after its kill");
            await Task.Delay(100, Ct);
        }
    }
}
