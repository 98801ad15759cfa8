using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Containerd.Task.V2;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Shim.Ttrpc;

namespace Shim.E2E.Tests;

/// <summary>
/// Slow runc calls next to busy neighbours in one grouped shim (issue 20, point 2): a runc wrapper
/// holds <c>runc create</c> of some containers and <c>runc start</c> of others until the test
/// releases them (as a long hook would), and meanwhile the running neighbour must be served:
/// State, Exec with output, Kill and its exit, and a burst of 100 calls. The checks are about order
/// (done while the holds are still held) and the shim's thread count, never about time.
/// </summary>
public sealed class SlowRuncTests : E2ETest, IAsyncLifetime
{
    private const string Group = "slow-runc";
    private const int HeldCreates = 4;
    private const int HeldStarts = 4;
    private const int HeldCalls = HeldCreates + HeldStarts;

    // room for pool workers the baseline happened to miss (those a busy moment adds retire after
    // 2 s idle, which ThreadsSettledAsync waits for); a blocking runner took two per held call
    private const int ThreadAllowance = 2;

    private static readonly TimeSpan HeldRunTimeout = TimeSpan.FromSeconds(180);

    private RuncWrapper? _runc;
    private FileStream? _hold;   // its lock (flock LOCK_EX, which .NET takes for FileShare.None) holds the calls

    private protected override ContainerdOptions DaemonOptions => new(PathFirst: (_runc ??= RuncWrapper.Create(ContainerdLines.Current)).Dir);

    private RuncWrapper Runc => _runc ?? throw new InvalidOperationException("the daemon was not started");

    private string HoldFile => Path.Combine(Runc.Dir, "hold");

    [Fact]
    public async Task Runc_calls_held_for_eight_containers_neither_hold_up_a_neighbours_state_exec_kill_and_exit_nor_grow_the_shims_threads()
    {
        (await CtrAsync(Grouped(RunArgs("n1", detach: true, "sleep", "600")))).EnsureSuccess();
        (await CtrAsync(Grouped(RunArgs("n2", detach: true, "sleep", "600")))).EnsureSuccess();
        int shim = SingleShim();
        await using var client = await ShimClient.ConnectAsync(Ctrd, Ns, "n1", Ct);
        var idle = await StateLatenciesAsync(client, "n1", 200, Ct);
        int threadsBefore = Threads(shim);

        using var arrived = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        var arriving = StateLatenciesAsync(client, "n1", int.MaxValue, arrived.Token);
        var held = HoldAndRun();
        try
        {
            await WaitForHoldsAsync(held);
            await arrived.CancelAsync();
            var during = await arriving;
            var busy = await StateLatenciesAsync(client, "n1", 200, Ct);
            Log($"State of the neighbour, one call after another: idle {Describe(idle)}; while the {HeldCalls} runc calls came in {Describe(during)}; "
                + $"with them held {Describe(busy)}");

            var state = await client.CallAsync("State", new StateRequest { Id = "n1" }, StateResponse.Parser, Ct);
            Assert.Equal(Containerd.Types.Task.Status.Running, state.Status);
            var exec = await CtrAsync("task", "exec", "--fifo-dir", Ctrd.FifoDir, "--exec-id", "e1", "n1", "echo", "served");
            Assert.True(exec.ExitCode == 0 && exec.Stdout == "served\n", exec.Describe());
            (await CtrAsync("task", "kill", "-s", "SIGKILL", "n1")).EnsureSuccess();
            var wait = await client.CallAsync("Wait", new WaitRequest { Id = "n1" }, WaitResponse.Parser, Ct);
            Assert.Equal(137u, wait.ExitStatus);

            // all of it while every held call is still held
            AssertStillHeld(held);
            int threads = await ThreadsSettledAsync(shim, threadsBefore + ThreadAllowance);
            Log($"shim threads: {threadsBefore} before the holds, {threads} with {HeldCalls} runc calls held");
            Assert.True(threads <= threadsBefore + ThreadAllowance,
                $"the shim went from {threadsBefore} to {threads} threads with {HeldCalls} runc calls held");
            AssertStillHeld(held);
        }
        finally
        {
            await ReleaseAsync(held);
        }

        var tasks = (await CtrAsync("task", "ls")).EnsureSuccess().Stdout;
        foreach (var id in HeldIds())
        {
            Assert.Matches($@"(?m)^{id}\s+\d+\s+RUNNING", tasks);
        }
        var after = await CtrAsync("task", "exec", "--fifo-dir", Ctrd.FifoDir, "--exec-id", "e2", "n2", "echo", "after");
        Assert.True(after.ExitCode == 0 && after.Stdout == "after\n", after.Describe());
        Assert.Equal([shim], ProcFs.ShimPids(Ctrd.Socket));
        (await CtrAsync("task", "delete", "n1")).EnsureSuccess();
    }

    [Fact]
    public async Task A_burst_of_100_state_and_pids_calls_while_runc_calls_are_held_is_all_answered_and_a_neighbours_exit_is_reported()
    {
        await using var events = Ctrd.StartEvents();
        await events.EnsureSubscribedAsync(Ctrd, Ns, Ct);
        (await CtrAsync(Grouped(RunArgs("n1", detach: true, "sleep", "600")))).EnsureSuccess();
        (await CtrAsync(Grouped(RunArgs("n2", detach: true, "sleep", "600")))).EnsureSuccess();
        SingleShim();
        await using var client = await ShimClient.ConnectAsync(Ctrd, Ns, "n1", Ct);

        var held = HoldAndRun();
        try
        {
            await WaitForHoldsAsync(held);
            var exited = client.CallAsync("Wait", new WaitRequest { Id = "n1" }, WaitResponse.Parser, Ct);

            // sent in one go on one connection; n1 is killed in the middle of the burst
            var toN1 = new List<Task<string>>(50);
            var toN2 = new List<Task<string>>(50);
            Task<string>? kill = null;
            for (int i = 0; i < 100; i++)
            {
                var calls = i % 2 == 0 ? toN1 : toN2;
                string id = i % 2 == 0 ? "n1" : "n2";
                calls.Add(i % 4 < 2
                    ? Answer(client, "State", new StateRequest { Id = id }, StateResponse.Parser)
                    : Answer(client, "Pids", new PidsRequest { Id = id }, PidsResponse.Parser));
                if (i == 50)
                {
                    kill = Answer(client, "Kill", new KillRequest { Id = "n1", Signal = 9 }, Empty.Parser);
                }
            }
            var n1Answers = await Task.WhenAll(toN1);
            var n2Answers = await Task.WhenAll(toN2);

            Log($"answers for n1 (killed halfway): {Tally(n1Answers)}; for n2: {Tally(n2Answers)}; kill: {await kill!}");
            // every call got an answer; n1's after its exit may be errors (runc ps of a stopped container), n2's may not
            Assert.Equal(50, n1Answers.Length);
            Assert.All(n2Answers, a => Assert.Equal("OK", a));
            Assert.Equal("OK", await kill!);
            Assert.Equal(137u, (await exited).ExitStatus);
            await events.WaitForAsync(es => es.Any(e => e.Topic == "/tasks/exit" && ContainerOf(e) == "n1"),
                TimeSpan.FromSeconds(60), "/tasks/exit for n1", Ct);
            AssertStillHeld(held);
        }
        finally
        {
            await ReleaseAsync(held);
        }
        (await CtrAsync("task", "delete", "n1")).EnsureSuccess();
    }

    public new async ValueTask DisposeAsync()
    {
        if (_hold is not null)
        {
            await _hold.DisposeAsync();   // never leave a wrapper waiting
        }
        await base.DisposeAsync();
        _runc?.Dispose();
    }

    private static IEnumerable<string> HeldIds() => Enumerable.Range(1, HeldCalls).Select(i => i <= HeldCreates ? $"hc{i}" : $"hs{i}");

    /// <summary>
    /// Holds runc create of hc* and runc start of hs* until the test lets go of its lock on the hold
    /// file (each held wrapper waits in flock for a shared lock: no polling, and a call that comes
    /// after the release is not held), then runs ctr run -d for each in the background.
    /// </summary>
    private List<Task<CommandResult>> HoldAndRun()
    {
        _hold = new FileStream(HoldFile, FileMode.Create, FileAccess.ReadWrite, FileShare.None);
        Runc.Before("""
            id=; for a in "$@"; do id=$a; done
            case "$verb $id" in
              "create hc"*|"start hs"*)
                echo "$verb $id" >> "$dir/record"
                flock -s "$dir/hold" true ;;
            esac
            """);
        return [.. HeldIds().Select(id => CtrAsync(Grouped(RunArgs(id, detach: true, "sleep", "600")), stdin: null, HeldRunTimeout))];
    }

    private async Task WaitForHoldsAsync(List<Task<CommandResult>> runs)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(120);
        while (Runc.Record().Length < HeldCalls)
        {
            if (runs.FirstOrDefault(r => r.IsCompleted) is { } ended)
            {
                Assert.Fail($"a ctr run ended before its runc call was held: {(await ended).Describe()}");
            }
            Assert.True(DateTime.UtcNow < deadline, $"only {Runc.Record().Length} of {HeldCalls} runc calls were held: {string.Join(", ", Runc.Record())}");
            await Task.Delay(50, Ct);
        }
        Log("held: " + string.Join(", ", Runc.Record()));
    }

    private void AssertStillHeld(List<Task<CommandResult>> runs)
    {
        Assert.NotNull(_hold);
        Assert.All(runs, r => Assert.False(r.IsCompleted, "a held ctr run has ended"));
    }

    private async Task ReleaseAsync(List<Task<CommandResult>> runs)
    {
        if (_hold is not null)
        {
            await _hold.DisposeAsync();
            _hold = null;
        }
        Runc.Before("");
        foreach (var run in runs)
        {
            var r = await run;
            Assert.True(r.ExitCode == 0, r.Describe());
        }
    }

    private int SingleShim()
    {
        var shims = ProcFs.ShimPids(Ctrd.Socket);
        Assert.True(shims.Count == 1, $"the grouped containers should share one shim, found {shims.Count}");
        return shims[0];
    }

    private static int Threads(int pid) => Directory.GetDirectories($"/proc/{pid}/task").Length;

    /// <summary>
    /// The shim's thread count once it is at most <paramref name="bound"/>, or the last one seen after
    /// 20 s: pool threads a burst of calls added retire after 2 s idle, threads blocked in a call never do.
    /// </summary>
    private static async Task<int> ThreadsSettledAsync(int pid, int bound)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        int threads;
        while ((threads = Threads(pid)) > bound && DateTime.UtcNow < deadline)
        {
            await Task.Delay(100, Ct);
        }
        return threads;
    }

    /// <summary><paramref name="count"/> State calls one after another, fewer if <paramref name="until"/> comes first; their latencies in ms (logged, never asserted).</summary>
    private static async Task<List<double>> StateLatenciesAsync(ShimClient client, string id, int count, CancellationToken until)
    {
        var latencies = new List<double>(Math.Min(count, 1000));
        for (int i = 0; i < count && !until.IsCancellationRequested; i++)
        {
            long start = Stopwatch.GetTimestamp();
            await client.CallAsync("State", new StateRequest { Id = id }, StateResponse.Parser, Ct);
            latencies.Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds);
        }
        return latencies;
    }

    private static string Describe(List<double> ms)
    {
        var sorted = ms.Order().ToList();
        double At(double p) => sorted[Math.Min(sorted.Count - 1, (int)Math.Ceiling(p * sorted.Count) - 1)];
        return string.Create(CultureInfo.InvariantCulture, $"{sorted.Count} calls: p50 {At(0.50):0.00} ms, p99 {At(0.99):0.00} ms, max {sorted[^1]:0.00} ms");
    }

    /// <summary>"OK", or the status code the call failed with; a call that gets no answer fails the test (its timeout).</summary>
    private static async Task<string> Answer<TRequest, TResponse>(ShimClient client, string method, TRequest request, MessageParser<TResponse> parser)
        where TRequest : IMessage<TRequest>
        where TResponse : IMessage<TResponse>
    {
        try
        {
            await client.CallAsync(method, request, parser, Ct);
            return "OK";
        }
        catch (TtrpcException ex)
        {
            return ex.Code.ToString();
        }
    }

    private static string Tally(string[] answers) => string.Join(", ", answers.GroupBy(a => a).Select(g => $"{g.Key} x{g.Count()}"));

    private static string? ContainerOf(CtrEvent e)
    {
        try
        {
            using var doc = JsonDocument.Parse(e.Json);
            return doc.RootElement.TryGetProperty("container_id", out var id) ? id.GetString() : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    /// <summary><c>ctr run</c> arguments with the annotation that puts the container into the test's shim group.</summary>
    private static string[] Grouped(string[] runArgs) =>
        [runArgs[0], runArgs[1], "--annotation", $"io.kubernetes.cri.sandbox-id={Group}", .. runArgs[2..]];
}
