using System.Text;
using Containerd.Task.V2;
using Google.Protobuf.WellKnownTypes;
using Shim.Ttrpc;
using TaskStatus = Containerd.Types.Task.Status;

namespace Shim.E2E.Tests;

/// <summary>
/// Requests on an exec process in each window of its life: before Start, during Start (while the
/// shim's <c>runc exec</c> is held open by the wrapper, see <see cref="ExecHold"/>) and after Start.
/// containerd's shim holds the exec's mutex for the whole Start, so its Kill, ResizePty, Delete and
/// State of that exec wait for the start to end; Wait does not take the mutex; CloseIO does not
/// either, and closes only a stdin writer that already exists.
/// </summary>
public sealed class ExecStartWindowTests : HeldExecTest
{
    private const string Id = "win";
    private static readonly byte[] Hello = Encoding.ASCII.GetBytes("hello\n");

    // ---- CloseIO ----

    [Fact]
    public async Task CloseIO_before_Start_lets_cat_see_eof_once_the_client_closes_its_writer()
    {
        OursOnly("containerd's shim opens its own writer of the stdin FIFO after runc exec, and a CloseIO before that has nothing to close: cat never ends");
        await using var shim = await StartSleeperAsync(Id);
        var stdio = await NewStdioAsync();
        await ExecAsync(shim, Id, "x1", ["cat"], stdio: stdio);

        await CallAsync(shim, "CloseIO", new CloseIORequest { Id = Id, ExecId = "x1", Stdin = true }, Empty.Parser);
        await CallAsync(shim, "Start", new StartRequest { Id = Id, ExecId = "x1" }, StartResponse.Parser);
        await stdio.WriteAndCloseAsync(Hello, StepTimeout, Ct);

        await ExpectCatEndsAsync(shim, stdio, "x1");
    }

    [Fact]
    public async Task CloseIO_during_Start_lets_cat_see_eof_once_the_client_closes_its_writer()
    {
        // what `echo hello | ctr task exec ... cat` does against our shim: ctr's CloseIO comes while runc exec runs
        OursOnly("containerd's shim opens its own writer of the stdin FIFO after runc exec, and a CloseIO before that has nothing to close: cat never ends");
        await using var shim = await StartSleeperAsync(Id);
        var stdio = await NewStdioAsync();
        var hold = await NewHoldAsync();
        await ExecAsync(shim, Id, "x1", ["cat"], hold, stdio);
        var start = await StartHeldAsync(shim, Id, "x1", hold);

        await CallAsync(shim, "CloseIO", new CloseIORequest { Id = Id, ExecId = "x1", Stdin = true }, Empty.Parser).WaitAsync(StepTimeout, Ct);
        await hold.ReleaseAsync(StepTimeout, Ct);
        var started = await start.WaitAsync(StepTimeout, Ct);
        Assert.True(started.Code == StatusCode.OK, $"Start: {started}");
        await stdio.WriteAndCloseAsync(Hello, StepTimeout, Ct);

        await ExpectCatEndsAsync(shim, stdio, "x1");
    }

    [Fact]
    public async Task CloseIO_during_Start_with_an_empty_input_lets_wc_count_zero_bytes()
    {
        // `ctr task exec ... wc -c </dev/null` in raw form: the client's writer closes without a byte
        OursOnly("containerd's shim opens its own writer of the stdin FIFO after runc exec, and a CloseIO before that has nothing to close: wc never ends");
        await using var shim = await StartSleeperAsync(Id);
        var stdio = await NewStdioAsync();
        var hold = await NewHoldAsync();
        await ExecAsync(shim, Id, "x1", ["wc", "-c"], hold, stdio);
        var start = await StartHeldAsync(shim, Id, "x1", hold);

        await CallAsync(shim, "CloseIO", new CloseIORequest { Id = Id, ExecId = "x1", Stdin = true }, Empty.Parser).WaitAsync(StepTimeout, Ct);
        await hold.ReleaseAsync(StepTimeout, Ct);
        Assert.Equal(StatusCode.OK, (await start.WaitAsync(StepTimeout, Ct)).Code);
        await stdio.WriteAndCloseAsync([], StepTimeout, Ct);

        var exit = await WithinAsync(WaitAsync(shim, Id, "x1"), "the exit of wc: it never saw EOF on its stdin");
        Assert.Equal(0u, exit.ExitStatus);
        Assert.Equal("0", (await stdio.ReadAllAsync(StepTimeout, Ct)).Trim());
        await CallAsync(shim, "Delete", new DeleteRequest { Id = Id, ExecId = "x1" }, DeleteResponse.Parser);
    }

    [Fact]
    public async Task CloseIO_after_Start_lets_cat_see_eof_once_the_client_closes_its_writer()
    {
        await using var shim = await StartSleeperAsync(Id);
        var stdio = await NewStdioAsync();
        await ExecAsync(shim, Id, "x1", ["cat"], stdio: stdio);
        await CallAsync(shim, "Start", new StartRequest { Id = Id, ExecId = "x1" }, StartResponse.Parser);

        // the order ctr keeps: its writer closes when its stdin ends, then it sends CloseIO
        await stdio.WriteAndCloseAsync(Hello, StepTimeout, Ct);
        await CallAsync(shim, "CloseIO", new CloseIORequest { Id = Id, ExecId = "x1", Stdin = true }, Empty.Parser);

        await ExpectCatEndsAsync(shim, stdio, "x1");
    }

    // ---- ResizePty ----

    // a terminal exec that prints its window size once the test sends it a line (after Start):
    // by then the size must be on the console
    private static readonly string[] SttyAfterALine = ["sh", "-c", "read line; stty size"];
    private const uint Width = 101, Height = 33;

    [Fact]
    public async Task ResizePty_before_Start_is_applied_once_the_console_arrives()
    {
        OursOnly("containerd's shim answers a resize before Start without effect: the exec has no console yet and the size is not kept");
        await using var shim = await StartSleeperAsync(Id);
        var stdio = await NewStdioAsync(terminal: true);
        await ExecAsync(shim, Id, "t1", SttyAfterALine, stdio: stdio, terminal: true);

        await CallAsync(shim, "ResizePty", new ResizePtyRequest { Id = Id, ExecId = "t1", Width = Width, Height = Height }, Empty.Parser);
        await CallAsync(shim, "Start", new StartRequest { Id = Id, ExecId = "t1" }, StartResponse.Parser);

        await ExpectSizeAsync(shim, stdio, "t1");
    }

    [Fact]
    public async Task ResizePty_during_Start_is_applied_once_the_console_arrives()
    {
        await using var shim = await StartSleeperAsync(Id);
        var stdio = await NewStdioAsync(terminal: true);
        var hold = await NewHoldAsync();
        await ExecAsync(shim, Id, "t1", SttyAfterALine, hold, stdio, terminal: true);
        var start = await StartHeldAsync(shim, Id, "t1", hold);

        // ours keeps the size and answers; containerd's shim waits for the start, then resizes the console
        var resize = CallAsync(shim, "ResizePty", new ResizePtyRequest { Id = Id, ExecId = "t1", Width = Width, Height = Height }, Empty.Parser);
        await RoundTripAsync(shim, Id);
        await hold.ReleaseAsync(StepTimeout, Ct);
        Assert.Equal(StatusCode.OK, (await start.WaitAsync(StepTimeout, Ct)).Code);
        await resize.WaitAsync(StepTimeout, Ct);

        await ExpectSizeAsync(shim, stdio, "t1");
    }

    [Fact]
    public async Task ResizePty_after_Start_is_applied_at_once()
    {
        await using var shim = await StartSleeperAsync(Id);
        var stdio = await NewStdioAsync(terminal: true);
        await ExecAsync(shim, Id, "t1", SttyAfterALine, stdio: stdio, terminal: true);
        await CallAsync(shim, "Start", new StartRequest { Id = Id, ExecId = "t1" }, StartResponse.Parser);

        await CallAsync(shim, "ResizePty", new ResizePtyRequest { Id = Id, ExecId = "t1", Width = Width, Height = Height }, Empty.Parser);

        await ExpectSizeAsync(shim, stdio, "t1");
    }

    // ---- Kill ----

    [Fact]
    public async Task Kill_before_Start_fails_with_FailedPrecondition_and_the_exec_stays_created()
    {
        await using var shim = await StartSleeperAsync(Id);
        await ExecAsync(shim, Id, "k1", ["sleep", "300"]);

        var (code, message) = await StatusOfAsync(shim, "Kill", new KillRequest { Id = Id, ExecId = "k1", Signal = 9 }, Empty.Parser);

        Assert.True(code == StatusCode.FailedPrecondition, $"{code}: {message}");
        Assert.Equal(TaskStatus.Created, await StatusAsync(shim, Id, "k1"));
        await CallAsync(shim, "Delete", new DeleteRequest { Id = Id, ExecId = "k1" }, DeleteResponse.Parser);
    }

    [Fact]
    public async Task Kill_during_Start_waits_for_the_start_then_signals_the_running_exec()
    {
        await using var shim = await StartSleeperAsync(Id);
        var hold = await NewHoldAsync();
        await ExecAsync(shim, Id, "k1", ["sleep", "300"], hold);
        var start = await StartHeldAsync(shim, Id, "k1", hold);

        var kill = StatusOfAsync(shim, "Kill", new KillRequest { Id = Id, ExecId = "k1", Signal = 9 }, Empty.Parser);
        await RoundTripAsync(shim, Id);
        await hold.ReleaseAsync(StepTimeout, Ct);

        Assert.Equal(StatusCode.OK, (await start.WaitAsync(StepTimeout, Ct)).Code);
        var (code, message) = await kill.WaitAsync(StepTimeout, Ct);
        Assert.True(code == StatusCode.OK, $"Kill: {code}: {message}");
        var exit = await WaitAsync(shim, Id, "k1").WaitAsync(StepTimeout, Ct);
        Assert.Equal(137u, exit.ExitStatus);   // 128 + SIGKILL
        await CallAsync(shim, "Delete", new DeleteRequest { Id = Id, ExecId = "k1" }, DeleteResponse.Parser);
    }

    [Fact]
    public async Task Kill_after_Start_signals_the_exec()
    {
        await using var shim = await StartSleeperAsync(Id);
        await ExecAsync(shim, Id, "k1", ["sleep", "300"]);
        await CallAsync(shim, "Start", new StartRequest { Id = Id, ExecId = "k1" }, StartResponse.Parser);

        await CallAsync(shim, "Kill", new KillRequest { Id = Id, ExecId = "k1", Signal = 15 }, Empty.Parser);

        var exit = await WaitAsync(shim, Id, "k1").WaitAsync(StepTimeout, Ct);
        Assert.Equal(143u, exit.ExitStatus);   // 128 + SIGTERM
        await CallAsync(shim, "Delete", new DeleteRequest { Id = Id, ExecId = "k1" }, DeleteResponse.Parser);
    }

    // ---- State ----

    [Fact]
    public async Task State_before_Start_is_created_with_no_pid()
    {
        await using var shim = await StartSleeperAsync(Id);
        await ExecAsync(shim, Id, "s1", ["sleep", "300"]);

        var state = await CallAsync(shim, "State", new StateRequest { Id = Id, ExecId = "s1" }, StateResponse.Parser);

        Assert.Equal(TaskStatus.Created, state.Status);
        Assert.Equal(0u, state.Pid);
    }

    [Fact]
    public async Task State_during_Start_is_created_or_waits_for_the_start_and_is_running_afterwards()
    {
        await using var shim = await StartSleeperAsync(Id);
        var hold = await NewHoldAsync();
        await ExecAsync(shim, Id, "s1", ["sleep", "300"], hold);
        var start = await StartHeldAsync(shim, Id, "s1", hold);

        var during = StatusAsync(shim, Id, "s1");
        if (!Prereqs.IsStockRuntime)
        {
            // ours answers at once, from what it knows: runc exec has not returned, so no pid yet
            Assert.Equal(TaskStatus.Created, await during.WaitAsync(StepTimeout, Ct));
        }
        await RoundTripAsync(shim, Id);
        await hold.ReleaseAsync(StepTimeout, Ct);
        Assert.Equal(StatusCode.OK, (await start.WaitAsync(StepTimeout, Ct)).Code);

        // containerd's shim takes the exec's mutex for State, so it answers once the start is over
        var seen = await during.WaitAsync(StepTimeout, Ct);
        Log($"State sent during Start answered {seen}");
        Assert.True(seen is TaskStatus.Created or TaskStatus.Running, $"State during Start: {seen}");
        var after = await CallAsync(shim, "State", new StateRequest { Id = Id, ExecId = "s1" }, StateResponse.Parser);
        Assert.Equal(TaskStatus.Running, after.Status);
        Assert.NotEqual(0u, after.Pid);
    }

    [Fact]
    public async Task State_after_Start_is_running_with_the_exec_pid()
    {
        await using var shim = await StartSleeperAsync(Id);
        await ExecAsync(shim, Id, "s1", ["sleep", "300"]);
        var started = await CallAsync(shim, "Start", new StartRequest { Id = Id, ExecId = "s1" }, StartResponse.Parser);

        var state = await CallAsync(shim, "State", new StateRequest { Id = Id, ExecId = "s1" }, StateResponse.Parser);

        Assert.Equal(TaskStatus.Running, state.Status);
        Assert.Equal(started.Pid, state.Pid);
    }

    // ---- Pids ----

    [Fact]
    public async Task Pids_before_Start_lists_the_container_without_the_exec()
    {
        await using var shim = await StartSleeperAsync(Id);
        int init = await InitPidAsync(shim, Id);
        await ExecAsync(shim, Id, "p1", ["sleep", "300"]);

        var pids = await CallAsync(shim, "Pids", new PidsRequest { Id = Id }, PidsResponse.Parser);

        Assert.Equal(new[] { (uint)init }, pids.Processes.Select(p => p.Pid));
    }

    [Fact]
    public async Task Pids_during_Start_lists_the_container()
    {
        await using var shim = await StartSleeperAsync(Id);
        int init = await InitPidAsync(shim, Id);
        var hold = await NewHoldAsync();
        await ExecAsync(shim, Id, "p1", ["sleep", "300"], hold);
        var start = await StartHeldAsync(shim, Id, "p1", hold);

        // containerd's shim looks up each exec's pid under a lock its Start holds: it answers after the start
        var pids = CallAsync(shim, "Pids", new PidsRequest { Id = Id }, PidsResponse.Parser);
        await RoundTripAsync(shim, Id);
        await hold.ReleaseAsync(StepTimeout, Ct);
        Assert.Equal(StatusCode.OK, (await start.WaitAsync(StepTimeout, Ct)).Code);

        var listed = (await pids.WaitAsync(StepTimeout, Ct)).Processes.Select(p => p.Pid).ToList();
        Log($"Pids sent during Start: {string.Join(' ', listed)}");
        Assert.Contains((uint)init, listed);
    }

    [Fact]
    public async Task Pids_after_Start_lists_the_exec()
    {
        await using var shim = await StartSleeperAsync(Id);
        int init = await InitPidAsync(shim, Id);
        await ExecAsync(shim, Id, "p1", ["sleep", "300"]);
        var started = await CallAsync(shim, "Start", new StartRequest { Id = Id, ExecId = "p1" }, StartResponse.Parser);

        var pids = await CallAsync(shim, "Pids", new PidsRequest { Id = Id }, PidsResponse.Parser);

        Assert.Equal(new[] { (uint)init, started.Pid }.Order(), pids.Processes.Select(p => p.Pid).Order());
    }

    // ---- Wait ----

    [Fact]
    public async Task Wait_before_Start_answers_with_the_exit_of_the_started_exec()
    {
        await using var shim = await StartSleeperAsync(Id);
        await ExecAsync(shim, Id, "w1", ["sh", "-c", "exit 3"]);

        var wait = WaitAsync(shim, Id, "w1");
        await RoundTripAsync(shim, Id);
        await CallAsync(shim, "Start", new StartRequest { Id = Id, ExecId = "w1" }, StartResponse.Parser);

        Assert.Equal(3u, (await wait.WaitAsync(StepTimeout, Ct)).ExitStatus);
    }

    [Fact]
    public async Task Wait_during_Start_answers_with_the_exit_of_the_exec()
    {
        await using var shim = await StartSleeperAsync(Id);
        var hold = await NewHoldAsync();
        await ExecAsync(shim, Id, "w1", ["sh", "-c", "exit 3"], hold);
        var start = await StartHeldAsync(shim, Id, "w1", hold);

        var wait = WaitAsync(shim, Id, "w1");
        await RoundTripAsync(shim, Id);
        Assert.False(wait.IsCompleted, "Wait answered while the exec had not even been started");
        await hold.ReleaseAsync(StepTimeout, Ct);

        Assert.Equal(StatusCode.OK, (await start.WaitAsync(StepTimeout, Ct)).Code);
        Assert.Equal(3u, (await wait.WaitAsync(StepTimeout, Ct)).ExitStatus);
    }

    // ---- Delete ----

    [Fact]
    public async Task Delete_before_Start_removes_the_exec()
    {
        await using var shim = await StartSleeperAsync(Id);
        await ExecAsync(shim, Id, "d1", ["sleep", "300"]);

        await CallAsync(shim, "Delete", new DeleteRequest { Id = Id, ExecId = "d1" }, DeleteResponse.Parser);

        var (code, message) = await StatusOfAsync(shim, "State", new StateRequest { Id = Id, ExecId = "d1" }, StateResponse.Parser);
        Assert.True(code == StatusCode.NotFound, $"State of the deleted exec: {code}: {message}");
    }

    [Fact]
    public async Task Delete_during_Start_waits_for_the_start_then_refuses_the_running_exec()
    {
        await using var shim = await StartSleeperAsync(Id);
        var hold = await NewHoldAsync();
        await ExecAsync(shim, Id, "d1", ["sleep", "300"], hold);
        var start = await StartHeldAsync(shim, Id, "d1", hold);

        var delete = StatusOfAsync(shim, "Delete", new DeleteRequest { Id = Id, ExecId = "d1" }, DeleteResponse.Parser);
        await RoundTripAsync(shim, Id);
        await hold.ReleaseAsync(StepTimeout, Ct);

        Assert.Equal(StatusCode.OK, (await start.WaitAsync(StepTimeout, Ct)).Code);
        var (code, message) = await delete.WaitAsync(StepTimeout, Ct);
        Log($"Delete sent during Start: {code}: {message}");
        ExpectRefusedAsRunning(code, message);
        Assert.Equal(TaskStatus.Running, await StatusAsync(shim, Id, "d1"));
        await CallAsync(shim, "Kill", new KillRequest { Id = Id, ExecId = "d1", Signal = 9 }, Empty.Parser);
        await WaitAsync(shim, Id, "d1").WaitAsync(StepTimeout, Ct);
        await CallAsync(shim, "Delete", new DeleteRequest { Id = Id, ExecId = "d1" }, DeleteResponse.Parser);
    }

    [Fact]
    public async Task Delete_after_Start_refuses_the_running_exec()
    {
        await using var shim = await StartSleeperAsync(Id);
        await ExecAsync(shim, Id, "d1", ["sleep", "300"]);
        await CallAsync(shim, "Start", new StartRequest { Id = Id, ExecId = "d1" }, StartResponse.Parser);

        var (code, message) = await StatusOfAsync(shim, "Delete", new DeleteRequest { Id = Id, ExecId = "d1" }, DeleteResponse.Parser);

        ExpectRefusedAsRunning(code, message);
        Assert.Equal(TaskStatus.Running, await StatusAsync(shim, Id, "d1"));
    }

    // containerd's shim refuses with a plain error ("cannot delete a running process"), which
    // reaches the client as Unknown; ours says FailedPrecondition
    private static void ExpectRefusedAsRunning(StatusCode code, string message)
    {
        if (Prereqs.IsStockRuntime) { Assert.True(code != StatusCode.OK, "Delete of a running exec succeeded"); }
        else { Assert.True(code == StatusCode.FailedPrecondition, $"Delete of a running exec: {code}: {message}"); }
    }

    private async Task ExpectCatEndsAsync(ShimClient shim, ClientStdio stdio, string execId)
    {
        // cat ends only once it sees EOF: every writer of the stdin FIFO is closed, the shim's included
        var exit = await WithinAsync(WaitAsync(shim, Id, execId), $"the exit of cat ({execId}): it never saw EOF on its stdin");
        Assert.Equal(0u, exit.ExitStatus);
        Assert.Equal("hello\n", await stdio.ReadAllAsync(StepTimeout, Ct));
        Assert.Equal("", await stdio.ReadStderrAsync(StepTimeout, Ct));
        await CallAsync(shim, "Delete", new DeleteRequest { Id = Id, ExecId = execId }, DeleteResponse.Parser);
    }

    private async Task ExpectSizeAsync(ShimClient shim, ClientStdio stdio, string execId)
    {
        await stdio.WriteAndCloseAsync("size?\n"u8.ToArray(), StepTimeout, Ct);
        var exit = await WithinAsync(WaitAsync(shim, Id, execId), $"the exit of {execId}");
        string output = await stdio.ReadAllAsync(StepTimeout, Ct);
        Log($"terminal output: {output.ReplaceLineEndings("⏎")}");
        Assert.Equal(0u, exit.ExitStatus);
        // stty size prints "rows cols"; the console's line discipline ends lines with \r\n
        Assert.Contains($"{Height} {Width}\r\n", output, StringComparison.Ordinal);
        await CallAsync(shim, "Delete", new DeleteRequest { Id = Id, ExecId = execId }, DeleteResponse.Parser);
    }
}
