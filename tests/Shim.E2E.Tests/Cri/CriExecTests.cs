using System.Diagnostics;
using Grpc.Core;
using K8s.Cri.V1;
using Shim.E2E.Tests.Cri.V1;

namespace Shim.E2E.Tests.Cri;

/// <summary>
/// Execs as Kubernetes sends them, through containerd's CRI plugin into the runtime under test,
/// over and over in one long-running container: ExecSync (kubelet's probes, <c>crictl exec -s</c>)
/// and streaming Exec with stdin (<c>kubectl exec -i</c>), whose stdin containerd copies into the
/// exec's stdin FIFO and whose end containerd passes on as CloseIO on the exec process.
/// </summary>
public sealed class CriExecTests : CriTests
{
    /// <summary>Streaming rounds per test: CI runs the long loop, a workstation a short one.</summary>
    private static int StreamingRounds => Prereqs.IsCi ? 50 : 10;

    private const int ExecSyncRounds = 50;

    /// <summary>One exec, from the Exec call to the status message: far more than it takes (~0.1 s).</summary>
    private static readonly TimeSpan RoundTimeout = TimeSpan.FromSeconds(20);

    [Fact]
    public async Task Streaming_exec_over_a_websocket_gets_stdin_to_the_process_and_its_output_and_exit_code_0_back_every_time()
    {
        await WithAppContainerAsync(async (rt, cid, title) =>
        {
            var protocol = await ProtocolAsync(rt, cid);
            // v5 half-closes stdin: `cat` runs to EOF, i.e. until containerd's CloseIO reaches the
            // shim. v4 (every containerd line so far) cannot end stdin and keep the connection,
            // so the process ends by itself after one line: `head -n 1`.
            string[] cmd = protocol == CriStreamingExec.V5 ? ["/bin/cat"] : ["/bin/head", "-n", "1"];
            Log($"{title} streaming server chose {protocol}: {string.Join(' ', cmd)}{(protocol == CriStreamingExec.V5 ? " with stdin closed after the line" : "")}");
            await LoopAsync(title, $"streaming exec `{string.Join(' ', cmd)}`", StreamingRounds, async (round, ct) =>
            {
                var url = (await rt.ExecAsync(new ExecRequest { ContainerId = cid, Cmd = { cmd }, Stdin = true, Stdout = true, Stderr = true }, CriClient.Opts(ct))).Url;
                await using var exec = await CriStreamingExec.ConnectAsync(url, ct);
                try
                {
                    await exec.SendStdinAsync("hello\n"u8.ToArray(), ct);
                    if (exec.CanCloseStdin) { await exec.CloseStdinAsync(ct); }
                    var r = await exec.ReadToEndAsync(ct);
                    Assert.True(r.ExitCode == 0 && r.StdoutText == "hello\n" && r.Stderr.Length == 0, $"round {round}: {r}");
                }
                catch (OperationCanceledException) when (!Ct.IsCancellationRequested)
                {
                    throw new TimeoutException($"round {round}: no end of the exec within {RoundTimeout.TotalSeconds:0} s; so far {exec.Snapshot()}");
                }
            });
        });
    }

    [Fact]
    public async Task Streaming_exec_over_SPDY_with_stdin_closed_after_a_line_gets_it_back_from_cat_with_exit_code_0_every_time()
    {
        await WithAppContainerAsync(async (rt, cid, title) =>
        {
            Log($"{title} {CriSpdyExec.ProtocolName}: /bin/cat, stdin closed (FIN) after \"hello\\n\"");
            await LoopAsync(title, "SPDY streaming exec `cat`, stdin closed", StreamingRounds, async (round, ct) =>
            {
                // containerd copies the stdin stream into the exec's stdin FIFO and, at its EOF,
                // calls CloseIO on the exec process: `cat` ends only once the shim closes the FIFO
                var url = (await rt.ExecAsync(new ExecRequest { ContainerId = cid, Cmd = { "/bin/cat" }, Stdin = true, Stdout = true, Stderr = true }, CriClient.Opts(ct))).Url;
                await using var exec = await CriSpdyExec.ConnectAsync(url, ct);
                try
                {
                    await exec.SendStdinAsync("hello\n"u8.ToArray(), ct);
                    await exec.CloseStdinAsync(ct);
                    var r = await exec.ReadToEndAsync(ct);
                    Assert.True(r.ExitCode == 0 && r.StdoutText == "hello\n" && r.Stderr.Length == 0, $"round {round}: {r}");
                }
                catch (OperationCanceledException) when (!Ct.IsCancellationRequested)
                {
                    throw new TimeoutException($"round {round}: no end of the exec within {RoundTimeout.TotalSeconds:0} s of closing its stdin; so far {exec.Snapshot()}");
                }
            });
        });
    }

    [Fact]
    public async Task Ending_a_websocket_streaming_exec_closes_the_process_stdin_every_time()
    {
        await WithAppContainerAsync(async (rt, cid, title) =>
        {
            Log($"{title} streaming server chose {await ProtocolAsync(rt, cid)}");
            await LoopAsync(title, "streaming exec `cat > file` ended by closing the connection", StreamingRounds, async (round, ct) =>
            {
                // The process copies stdin to a file until EOF, then notes that it got there. With
                // the websocket closed, kubelet's streaming server closes the exec's stdin stream,
                // containerd's copy into the stdin FIFO ends and it calls CloseIO: only then does
                // `cat` see EOF. The output channels close with the connection, so the file is
                // where the result is read from (ExecSync, until it is complete or time is up).
                var file = $"/tmp/stdin-{round}";
                var url = (await rt.ExecAsync(new ExecRequest
                {
                    ContainerId = cid,
                    Cmd = { "/bin/sh", "-c", $"cat > {file}; echo \"cat exit $?\" >> {file}" },
                    Stdin = true,
                    Stdout = true,
                    Stderr = true,
                }, CriClient.Opts(ct))).Url;
                await using var exec = await CriStreamingExec.ConnectAsync(url, ct);
                await exec.SendStdinAsync("hello\n"u8.ToArray(), ct);
                await exec.CloseConnectionAsync(ct);
                const string expected = "hello\ncat exit 0\n";
                var seen = "";
                try
                {
                    while (seen != expected)
                    {
                        var r = await rt.ExecSyncAsync(new ExecSyncRequest { ContainerId = cid, Cmd = { "/bin/sh", "-c", $"cat {file} 2>/dev/null; true" }, Timeout = 10 }, CriClient.Opts(ct));
                        seen = r.Stdout.ToStringUtf8();
                        if (seen != expected) { await Task.Delay(50, ct); }
                    }
                }
                catch (Exception e) when (e is OperationCanceledException || e is RpcException { StatusCode: StatusCode.Cancelled or StatusCode.DeadlineExceeded })
                {
                    if (Ct.IsCancellationRequested) { throw; }
                    throw new TimeoutException($"round {round}: the exec's stdin did not end within {RoundTimeout.TotalSeconds:0} s of closing the connection: {file} holds \"{seen}\"");
                }
            });
        });
    }

    [Fact]
    public async Task ExecSync_echo_ok_answers_right_50_times_in_a_row()
    {
        await WithAppContainerAsync(async (rt, cid, title) =>
            await LoopAsync(title, "ExecSync `echo ok`", ExecSyncRounds, async (round, ct) =>
            {
                var r = await rt.ExecSyncAsync(new ExecSyncRequest { ContainerId = cid, Cmd = { "/bin/echo", "ok" }, Timeout = 15 }, CriClient.Opts(ct));
                Assert.True(r.ExitCode == 0 && r.Stdout.ToStringUtf8() == "ok\n" && r.Stderr.IsEmpty,
                    $"round {round}: exit {r.ExitCode}, stdout \"{r.Stdout.ToStringUtf8()}\", stderr \"{r.Stderr.ToStringUtf8()}\"");
            }));
    }

    /// <summary>
    /// Runs <paramref name="round"/> <paramref name="rounds"/> times, each bounded by
    /// <see cref="RoundTimeout"/>; the first failure ends the test with its round number.
    /// </summary>
    private static async Task LoopAsync(string title, string what, int rounds, Func<int, CancellationToken, Task> round)
    {
        var total = Stopwatch.StartNew();
        var slowest = TimeSpan.Zero;
        for (var i = 1; i <= rounds; i++)
        {
            using var cts = CancellationTokenSource.CreateLinkedTokenSource(Ct);
            cts.CancelAfter(RoundTimeout);
            var one = Stopwatch.StartNew();
            try { await round(i, cts.Token); }
            catch (RpcException e) when (!Ct.IsCancellationRequested)
            {
                throw new InvalidOperationException($"{what}, round {i} of {rounds}: {e.StatusCode}: {e.Status.Detail}", e);
            }
            catch (OperationCanceledException) when (!Ct.IsCancellationRequested)
            {
                throw new TimeoutException($"{what}, round {i} of {rounds}: not done within {RoundTimeout.TotalSeconds:0} s");
            }
            if (one.Elapsed > slowest) { slowest = one.Elapsed; }
        }
        Log($"{title} {what}: {rounds} rounds in {total.Elapsed.TotalSeconds:0.0} s, slowest {slowest.TotalMilliseconds:0} ms");
    }

    /// <summary>The sub-protocol containerd's streaming server settles on (one short exec).</summary>
    private static async Task<string> ProtocolAsync(RuntimeService.RuntimeServiceClient rt, string cid)
    {
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        cts.CancelAfter(RoundTimeout);
        var url = (await rt.ExecAsync(new ExecRequest { ContainerId = cid, Cmd = { "/bin/true" }, Stdout = true }, CriClient.Opts(cts.Token))).Url;
        await using var exec = await CriStreamingExec.ConnectAsync(url, cts.Token);
        var r = await exec.ReadToEndAsync(cts.Token);
        Assert.True(r.ExitCode == 0, $"streaming exec /bin/true: {r}");
        return exec.Protocol;
    }

    /// <summary>
    /// A host-network pod (handler of the runtime under test) with one busybox container that
    /// sleeps until stopped; <paramref name="body"/> gets its id. Everything is removed again,
    /// whatever the body did.
    /// </summary>
    private async Task WithAppContainerAsync(Func<RuntimeService.RuntimeServiceClient, string, string, Task> body)
    {
        await ImportImagesAsync();
        using var cri = new CriClient(Ctrd.Socket);
        var rt = cri.Runtime;
        var title = $"[{Ctrd.Line.Name} {Handler}]";
        var podName = "rcs-exec-" + Guid.NewGuid().ToString("N")[..8];
        var podConfig = new PodSandboxConfig
        {
            Metadata = new PodSandboxMetadata { Name = podName, Uid = Guid.NewGuid().ToString(), Namespace = "rcs-e2e", Attempt = 0 },
            LogDirectory = Path.Combine(Ctrd.Dir, "pods", podName),
            Linux = new LinuxPodSandboxConfig
            {
                CgroupParent = Ctrd.CgroupParent,
                SecurityContext = new LinuxSandboxSecurityContext
                {
                    NamespaceOptions = new NamespaceOption { Network = NamespaceMode.Node, Pid = NamespaceMode.Container, Ipc = NamespaceMode.Pod },
                },
            },
        };
        foreach (var image in new[] { OciImage.Name, OciImage.PauseName })
        {
            // CRI learns of `ctr images import` from events; without the pause image it would try to pull
            var until = DateTime.UtcNow.AddSeconds(10);
            while ((await cri.Images.ImageStatusAsync(new ImageStatusRequest { Image = new ImageSpec { Image = image } }, Opts())).Image is null)
            {
                Assert.True(DateTime.UtcNow < until, $"CRI does not see image {image} 10 s after the import");
                await Task.Delay(100, Ct);
            }
        }
        string podId = "", cid = "";
        try
        {
            podId = (await rt.RunPodSandboxAsync(new RunPodSandboxRequest { Config = podConfig, RuntimeHandler = Handler }, Opts(120))).PodSandboxId;
            var config = new ContainerConfig
            {
                Metadata = new ContainerMetadata { Name = "app", Attempt = 0 },
                Image = new ImageSpec { Image = OciImage.Name },
                // pid 1 of its own pid namespace: SIGTERM needs a handler
                Command = { "/bin/sh", "-c", "trap 'exit 143' TERM; while :; do sleep 1 & wait $!; done" },
                LogPath = "app.log",
                Linux = new LinuxContainerConfig { Resources = new LinuxContainerResources() },
            };
            cid = (await rt.CreateContainerAsync(new CreateContainerRequest { PodSandboxId = podId, Config = config, SandboxConfig = podConfig }, Opts(120))).ContainerId;
            await rt.StartContainerAsync(new StartContainerRequest { ContainerId = cid }, Opts(120));
            Log($"{title} pod {podId}, container {cid}");
            await body(rt, cid, title);
        }
        finally
        {
            // the container goes first, with every exec still running in it (its own pid
            // namespace: they die with its init); when CRI hangs, disposal kills by PID
            await RemovePodAsync(rt, podId, cid);
        }
    }
}
