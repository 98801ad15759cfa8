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

    [Fact]
    public async Task Kill_reaches_a_running_exec_through_its_pidfd()
    {
        Reaper.Instance.Start();
        var child = Reaper.Instance.Spawn(new SpawnOptions { Path = "/bin/sleep", Args = ["sleep", "1000"] });
        var exec = NewExec();
#pragma warning disable CA2000 // the process owns its pidfd from Attach on
        exec.Attach(child.Pid, PidFd.Open(child.Pid));
#pragma warning restore CA2000
        exec.StartTestIn(ExecState.Running);
        await exec.KillAsync(Signals.SIGKILL, Ct);
        Assert.Equal(128 + Signals.SIGKILL, (await child.Exited.WaitAsync(TimeSpan.FromSeconds(10), Ct)).Status);
    }

    [Fact]
    public async Task Kill_of_an_exec_reaped_but_not_yet_reported_is_not_found_instead_of_a_kill_of_its_pid()
    {
        // the exit is held (output unread, or execs before init): the state still says running
        Reaper.Instance.Start();
        var child = Reaper.Instance.Spawn(new SpawnOptions { Path = "/bin/sleep", Args = ["sleep", "1000"] });
        var exec = NewExec();
#pragma warning disable CA2000 // the process owns its pidfd from Attach on
        exec.Attach(child.Pid, PidFd.Open(child.Pid));
#pragma warning restore CA2000
        exec.StartTestIn(ExecState.Running);
        Signals.Kill(child.Pid, Signals.SIGKILL);
        await child.Exited.WaitAsync(TimeSpan.FromSeconds(10), Ct); // reaped: the pid is free for anyone
        Assert.Same(ExecState.Running, exec.State);
        var ex = await Assert.ThrowsAsync<ShimException>(() => exec.KillAsync(Signals.SIGTERM, Ct));
        Assert.Equal(ErrorKind.NotFound, ex.Kind);
    }
}
