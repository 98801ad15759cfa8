using Containerd.Events;
using Containerd.Types;
using Shim.Protos;
using Shim.Ttrpc;

namespace Shim.E2E.Tests;

/// <summary>
/// An event containerd refuses (issue 12, point 8): the shim under test publishes through an
/// <see cref="EventForwardProxy"/> that answers the exit of one exec with a non-transient status
/// every time it comes, and hands everything else to the real containerd.
/// </summary>
public sealed class EventRejectionTests : E2ETest
{
    /// <summary>The runtime under test, started with TTRPC_ADDRESS pointing at the proxy.</summary>
    private const string ProxiedRuntime = "io.containerd.rcsproxy.v2";

    private static readonly TimeSpan EventTimeout = TimeSpan.FromSeconds(20);

    [Theory]
    [InlineData(StatusCode.InvalidArgument)]
    [InlineData(StatusCode.ResourceExhausted)]
    public async Task An_exit_containerd_rejects_is_dropped_and_the_events_after_it_still_arrive(StatusCode rejection)
    {
        // a refused request stays refused: every Forward of this exit gets the same answer, as from containerd
        await using var proxy = EventForwardProxy.Start(Path.Combine(Ctrd.Dir, "events.sock"), Ctrd, IsExitOfExec("doomed"), rejection);
        var runtime = WrappedShim.Install(Ctrd, ProxiedRuntime, new Dictionary<string, string> { ["TTRPC_ADDRESS"] = proxy.SocketPath });
        await using var events = Ctrd.StartEvents();
        using var history = new ProxyHistory(proxy);
        await events.EnsureSubscribedAsync(Ctrd, Ns, Ct);

        (await CtrAsync(RunThrough(runtime, "rj", detach: true, "sleep", "300"))).EnsureSuccess();
        var doomed = await CtrAsync("task", "exec", "--fifo-dir", Ctrd.FifoDir, "--exec-id", "doomed", "rj", "sh", "-c", "exit 4");
        Assert.True(doomed.ExitCode == 4, doomed.Describe());
        var after = await CtrAsync("task", "exec", "--fifo-dir", Ctrd.FifoDir, "--exec-id", "after", "rj", "sh", "-c", "exit 5");
        Assert.True(after.ExitCode == 5, after.Describe());

        // the same shim publishes these after the rejected exit: none of them may wait behind it
        await events.WaitForAsync(es => es.Any(e => IsExit(e, "after")), EventTimeout, "/tasks/exit of exec after", Ct);
        (await CtrAsync("task", "kill", "-s", "SIGKILL", "rj")).EnsureSuccess();
        await events.WaitForAsync(es => es.Any(e => IsExit(e, "rj")), EventTimeout, "/tasks/exit of rj", Ct);
        (await CtrAsync("task", "delete", "rj")).EnsureSuccess();
        if (ShimSendsItsLastEvent)
        {
            await events.WaitForAsync(es => es.Any(e => IsDelete(e, "rj")), EventTimeout, "/tasks/delete of rj", Ct);
        }

        // a later container through the same runtime and proxy: ctr gets its exit code, containerd its events
        var later = await CtrAsync(RunThrough(runtime, "later", detach: false, "sh", "-c", "exit 6"));
        Assert.True(later.ExitCode == 6, later.Describe());
        var seen = await events.WaitForAsync(es => es.Any(e => IsExit(e, "later")), EventTimeout, "/tasks/exit of later", Ct);
        if (ShimSendsItsLastEvent)
        {
            seen = await events.WaitForAsync(es => es.Any(e => IsDelete(e, "later")), EventTimeout, "/tasks/delete of later", Ct);
        }

        Log(string.Join('\n', seen.Select(e => e.Raw)));
        Assert.Contains(seen, e => IsExit(e, "after") && e.Json.Contains("\"exit_status\":5", StringComparison.Ordinal));
        Assert.Contains(seen, e => IsExit(e, "rj") && e.Json.Contains("\"exit_status\":137", StringComparison.Ordinal));
        Assert.Contains(seen, e => IsExit(e, "later") && e.Json.Contains("\"exit_status\":6", StringComparison.Ordinal));
        // the events before the rejected one arrived; the rejected one is lost
        Assert.Contains(seen, e => e.Namespace == Ns && e.Topic == "/tasks/exec-started" && e.Json.Contains("\"exec_id\":\"doomed\"", StringComparison.Ordinal));
        Assert.DoesNotContain(seen, e => IsExit(e, "doomed"));

        var rejected = proxy.Rejected;
        Log($"proxy: {rejected.Count} Forward(s) rejected with {rejection}, {proxy.Forwarded.Count} forwarded to containerd");
        Assert.NotEmpty(rejected);
        if (!Prereqs.IsStockRuntime)
        {
            // containerd's shim sends it again 1, 2, 3... s later (pkg/shim/publisher.go, up to 5 requeues); ours drops it at once
            Assert.Single(rejected);
        }

        var logged = await ShimErrorLinesAsync(EventForwardProxy.RejectionText);
        Assert.True(logged.Count > 0, $"no error line in the containerd log carries the rejection ({EventForwardProxy.RejectionText})");
        if (!Prereqs.IsStockRuntime)
        {
            Assert.Contains(logged, l => l.Contains($"namespace={Ns} ", StringComparison.Ordinal) && l.Contains("topic=/tasks/exit ", StringComparison.Ordinal));
        }
    }

    /// <summary>
    /// False for containerd 2.x's own shim: it exits once its shutdown callbacks ran, without waiting
    /// for its publisher (pkg/shim/shim.go run(); 1.x waited for publisher.Done()), so a shim's last
    /// event, TaskDelete, can be lost there, and one more hop through the proxy makes that likely.
    /// </summary>
    private bool ShimSendsItsLastEvent => !(Prereqs.IsStockRuntime && Ctrd.Line.Major >= 2);

    private static Func<Envelope, bool> IsExitOfExec(string execId) => envelope =>
        envelope.Topic == "/tasks/exit" && TypeUrls.Is(envelope.Event, TypeUrls.TaskExit)
        && TaskExit.Parser.ParseFrom(envelope.Event.Value).Id == execId;

    private bool IsExit(CtrEvent e, string id) =>
        e.Namespace == Ns && e.Topic == "/tasks/exit" && e.Json.Contains($"\"id\":\"{id}\"", StringComparison.Ordinal);

    private bool IsDelete(CtrEvent e, string id) =>
        e.Namespace == Ns && e.Topic == "/tasks/delete" && e.Json.Contains($"\"container_id\":\"{id}\"", StringComparison.Ordinal);

    /// <summary>Error lines of the containerd log (where the shim's log is copied) that contain <paramref name="text"/>.</summary>
    private async Task<List<string>> ShimErrorLinesAsync(string text)
    {
        // containerd copies the shim's log FIFO asynchronously: allow a short moment
        var until = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (true)
        {
            var lines = Ctrd.ReadLog().Split('\n')
                .Where(l => l.Contains("level=error", StringComparison.Ordinal) && l.Contains(text, StringComparison.Ordinal)).ToList();
            if (lines.Count > 0 || DateTime.UtcNow > until)
            {
                lines.ForEach(l => Log("shim: " + l));
                return lines;
            }
            await Task.Delay(100, Ct);
        }
    }

    /// <summary>Writes what the proxy saw into the test output at the end, passed or failed.</summary>
    private sealed class ProxyHistory(EventForwardProxy proxy) : IDisposable
    {
        public void Dispose() => Log("events proxy:\n" + proxy.History);
    }
}
