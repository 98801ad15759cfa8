using System.Globalization;
using Containerd.Task.V2;
using Shim.Ttrpc;
using TaskStatus = Containerd.Types.Task.Status;

namespace Shim.E2E.Tests;

/// <summary>
/// An exec whose start fails stays CREATED, as with containerd's shim: its Wait answers at once and
/// it can be deleted. The port of containerd's integration test TestIssue10589
/// (integration/client/container_linux_test.go), with the wrapper's hold in place of runc-fp's
/// delayExec failpoint: an exec's runc exec is held while the container's init is killed.
/// </summary>
public sealed class ExecAfterInitExitTests : HeldExecTest
{
    private const string Id = "i10589";

    [Fact]
    public async Task Execs_started_around_the_death_of_init_fail_stay_created_and_delete_cleanly()
    {
        if (Prereqs.IsStockRuntime && Ctrd.Line.Name == "1.6")
        {
            // seen with 1.6.20: its exit loop reads every exec's pid under the lock the exec's Start
            // holds, so init's exit (and the requests behind it) wait until the held runc exec is
            // killed at the Start request's deadline; then it refuses exec2's Exec itself ("cannot
            // exec in a stopped state"). containerd reworked this for issue 10589 (2.0, 1.7)
            Assert.Skip("containerd 1.6's own shim handles init's exit only after an exec's start ended (containerd issue 10589)");
        }
        await using var shim = await StartSleeperAsync(Id);
        int init = await InitPidAsync(shim, Id);

        // 1. exec1's start is inside runc exec
        var hold1 = await NewHoldAsync();
        await ExecAsync(shim, Id, "exec1", ["sleep", "301"], hold1);
        var start1 = await StartHeldAsync(shim, Id, "exec1", hold1);

        // 2. init dies under it (by pid, as the Go test does: no Kill request the shim could order)
        (await Command.RunAsync("/bin/kill", ["-KILL", init.ToString(CultureInfo.InvariantCulture)], ct: Ct)).EnsureSuccess();
        Log($"killed init {init}; init State now {await StatusAsync(shim, Id)}");

        // 3. exec2 is created and started: a shim that already handled init's exit refuses the start
        // (both do); otherwise its runc exec is entered and held too
        var hold2 = await NewHoldAsync();
        await ExecAsync(shim, Id, "exec2", ["sleep", "302"], hold2);
        var entered2 = hold2.EnteredAsync();
        var start2 = StartStatusAsync(shim, Id, "exec2");
        bool exec2Held = await Task.WhenAny(entered2, start2).WaitAsync(StepTimeout, Ct) == entered2;
        Log($"exec2's start {(exec2Held ? "entered runc exec" : $"was refused: {await start2}")}");

        // 4. release exec1, then exec2: runc exec into a container whose init is gone fails
        await hold1.ReleaseAsync(StepTimeout, Ct);
        var (code1, message1) = await start1.WaitAsync(StepTimeout, Ct);
        if (exec2Held) { await hold2.ReleaseAsync(StepTimeout, Ct); }
        var (code2, message2) = await start2.WaitAsync(StepTimeout, Ct);
        Log($"exec1's start: {code1}: {message1}; exec2's start: {code2}: {message2}; wrapper record: {string.Join(" | ", Runc.Record())}");
        Assert.True(code1 != StatusCode.OK, "exec1 started in a container whose init was killed");
        Assert.True(code2 != StatusCode.OK, "exec2 started in a container whose init was killed");

        // 5. both execs are still CREATED (never started); init is STOPPED
        Assert.Equal(TaskStatus.Created, await StatusAsync(shim, Id, "exec1"));
        Assert.Equal(TaskStatus.Created, await StatusAsync(shim, Id, "exec2"));
        Assert.Equal(137u, (await WaitAsync(shim, Id).WaitAsync(StepTimeout, Ct)).ExitStatus);
        Assert.Equal(TaskStatus.Stopped, await StatusAsync(shim, Id));

        // 6. a Wait on either answers (nothing will ever run), and everything deletes
        await WaitAsync(shim, Id, "exec1").WaitAsync(StepTimeout, Ct);
        if (exec2Held || !Prereqs.IsStockRuntime)
        {
            await WaitAsync(shim, Id, "exec2").WaitAsync(StepTimeout, Ct);
        }
        else
        {
            // containerd's shim refuses that start in its service ("init process is not running"),
            // before the exec's own Start, which alone releases the exec's waiters: a Wait on it
            // never answers (the Go test does not wait on its execs; seen with 2.1.9: no answer in 5 s)
            Log("no Wait on exec2: containerd's shim never answers it after refusing the start");
        }
        await CallAsync(shim, "Delete", new DeleteRequest { Id = Id, ExecId = "exec1" }, DeleteResponse.Parser);
        await CallAsync(shim, "Delete", new DeleteRequest { Id = Id, ExecId = "exec2" }, DeleteResponse.Parser);
        var deleted = (await CtrAsync("task", "delete", Id)).EnsureSuccess();
        Log($"ctr task delete: {deleted.Stderr.Trim()}");
        (await CtrAsync("container", "rm", Id)).EnsureSuccess();
        Assert.DoesNotContain(Id, (await CtrAsync("task", "ls")).EnsureSuccess().Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_exec_of_a_missing_binary_fails_to_start_stays_created_and_deletes()
    {
        await using var shim = await StartSleeperAsync(Id);
        await ExecAsync(shim, Id, "nobin", ["/no/such/binary"]);

        var (code, message) = await StartStatusAsync(shim, Id, "nobin");

        Assert.True(code != StatusCode.OK, "starting /no/such/binary must fail");
        Assert.Contains("no/such/binary", message, StringComparison.Ordinal);
        var state = await CallAsync(shim, "State", new StateRequest { Id = Id, ExecId = "nobin" }, StateResponse.Parser);
        Assert.Equal(TaskStatus.Created, state.Status);
        Assert.Equal(0u, state.Pid);
        await WaitAsync(shim, Id, "nobin").WaitAsync(StepTimeout, Ct);   // answers at once: nothing will run
        await CallAsync(shim, "Delete", new DeleteRequest { Id = Id, ExecId = "nobin" }, DeleteResponse.Parser);
        // the container goes on
        Assert.Equal(TaskStatus.Running, await StatusAsync(shim, Id));
        var echo = await CtrAsync("task", "exec", "--fifo-dir", Ctrd.FifoDir, "--exec-id", "after", Id, "echo", "still-running");
        Assert.Equal("still-running\n", echo.EnsureSuccess().Stdout);
    }
}
