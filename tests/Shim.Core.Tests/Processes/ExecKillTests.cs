using Shim.Core.Errors;
using Shim.Core.Events;
using Shim.Core.Processes;
using Shim.Core.Stdio;
using Shim.Core.Tests.Service;
using Shim.Os;
using Shim.Runc;

namespace Shim.Core.Tests.Processes;

public sealed class ExecKillTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static ExecProcess NewExec()
    {
        var sequencer = new ExitSequencer(new TaskEvents(new RecordingPublisher()));
        var stdio = new StdioPaths("", "", "", false);
        var init = new InitProcess("c1", stdio, new RuncClient(new RuncConfig("/bin/false", "/nonexistent", "/dev/null"), new FakeRunner()), sequencer);
        var container = new Container("c1", Path.GetTempPath(), rootfsMounted: false, sharesPidNamespace: false, init) { Stdio = Stdio.TestStdio.Context };
        return new ExecProcess(container, "e1", stdio, []);
    }

    /// <summary>The exec as the starter attaches it: with its pidfd, or without one (pidfd_open failed: EMFILE, a kernel before 5.3) and signalled by pid.</summary>
    private static void Attach(ExecProcess exec, int pid, bool withPidFd) =>
#pragma warning disable CA2000 // the process owns its pidfd from Attach on
        exec.Attach(pid, withPidFd ? PidFd.Open(pid) : null, Reaper.Instance);
#pragma warning restore CA2000

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Kill_reaches_a_running_exec_through_its_pidfd_or_without_one_by_pid(bool withPidFd)
    {
        Reaper.Instance.Start();
        var child = Reaper.Instance.Spawn(new SpawnOptions { Path = "/bin/sleep", Args = ["sleep", "1000"] });
        var exec = NewExec();
        Attach(exec, child.Pid, withPidFd);
        exec.StartTestIn(ExecState.Running);
        await exec.KillAsync(Signals.SIGKILL, Ct);
        Assert.Equal(128 + Signals.SIGKILL, (await child.Exited.WaitAsync(TimeSpan.FromSeconds(10), Ct)).Status);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Kill_of_an_exec_reaped_but_not_yet_reported_is_not_found_instead_of_a_kill_of_its_pid(bool withPidFd)
    {
        // the exit is held (output unread, or execs before init): the state still says running
        Reaper.Instance.Start();
        var child = Reaper.Instance.Spawn(new SpawnOptions { Path = "/bin/sleep", Args = ["sleep", "1000"] });
        var exec = NewExec();
        Attach(exec, child.Pid, withPidFd);
        exec.StartTestIn(ExecState.Running);
        Signals.Kill(child.Pid, Signals.SIGKILL);
        await child.Exited.WaitAsync(TimeSpan.FromSeconds(10), Ct); // reaped: the pid is free for anyone
        Assert.Same(ExecState.Running, exec.State);
        var ex = await Assert.ThrowsAsync<ShimException>(() => exec.KillAsync(Signals.SIGTERM, Ct));
        Assert.Equal(ErrorKind.NotFound, ex.Kind);
    }
}
