using System.Buffers.Binary;
using System.Diagnostics;
using System.Globalization;
using System.Net.Sockets;
using Containerd.Task.V2;
using Google.Protobuf;
using Shim.Ttrpc;
using Shim.Ttrpc.Wire;

namespace Shim.E2E.Tests;

/// <summary>
/// The bounds of the shim's ttrpc server under a real containerd, set small through the daemon's
/// environment (containerd hands it to its shims): a client past the connection bound is told
/// RESOURCE_EXHAUSTED, one over the in-flight bound too, a peer stalled inside a frame is dropped
/// after the frame timeout, and containerd's own calls go on throughout. containerd's shim has
/// none of these bounds.
/// </summary>
public sealed class ConnectionBoundsTests : E2ETest
{
    private const int MaxConnections = 8;
    private const int MaxInFlight = 6;
    private const int FrameTimeoutSeconds = 2;
    private const int Hostile = 40;

    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(20);

    private protected override ContainerdOptions DaemonOptions => new(Environment: new Dictionary<string, string>
    {
        ["RUNCSHARP_MAX_CONNECTIONS"] = MaxConnections.ToString(CultureInfo.InvariantCulture),
        ["RUNCSHARP_MAX_REQUESTS_IN_FLIGHT"] = MaxInFlight.ToString(CultureInfo.InvariantCulture),
        ["RUNCSHARP_FRAME_TIMEOUT"] = FrameTimeoutSeconds.ToString(CultureInfo.InvariantCulture),
    });

    [Fact]
    public async Task Connections_past_the_bound_are_told_resource_exhausted_containerd_keeps_working_and_the_descriptors_come_back()
    {
        OursOnly("containerd's shim has no connection bound");
        const string id = "bound1";
        (await CtrAsync(RunArgs(id, detach: true, "sleep", "300"))).EnsureSuccess();
        int shim = Assert.Single(ProcFs.ShimPids(Ctrd.Socket, id));
        string socket = await ShimClient.SocketPathAsync(Ctrd, Ns, id, Ct);
        var before = ProcStats.Sample(shim);
        Log($"shim {shim} before: {before}");

        var hostile = new List<Socket>();
        try
        {
            // each connects and sends a State request at once, as a client in a loop would
            for (int i = 0; i < Hostile; i++)
            {
                var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                hostile.Add(s);
                await s.ConnectAsync(new UnixDomainSocketEndPoint(socket), Ct);
                await SendUnlessRefusedAsync(s, StateFrame(id));
            }
            var answers = new List<string>();
            foreach (var s in hostile)
            {
                answers.Add(await AnswerAsync(s));
            }
            // a refused connection is shut down at once (the client reads its end) and its descriptor
            // closed once the io-loop has let go of it: settle, with every hostile client still connected
            var during = await SettledSampleAsync(shim, s => s.Fds <= before.Fds + MaxConnections + 16);
            Log($"answers: {string.Join(", ", answers.GroupBy(a => a).Select(g => $"{g.Count()} × {g.Key}"))}; shim during: {during}");

            // containerd holds one connection per container: the first few hostile ones are served, the rest told why not
            int served = answers.Count(a => a == "OK");
            Assert.InRange(served, 1, MaxConnections - 1);
            Assert.Contains($"ResourceExhausted: ttrpc: too many connections to this server ({MaxConnections})", answers);
            Assert.All(answers, a => Assert.True(a is "OK" or "closed" || a.StartsWith("ResourceExhausted", StringComparison.Ordinal), a));
            // what the shim holds for them is the served ones, never one per connection attempt
            Assert.True(during.Fds <= before.Fds + MaxConnections + 16, $"{during.Fds} fds with {Hostile} hostile connections open, {before.Fds} before");

            // a well-behaved client over the bound gets the same clear status
            await using (var late = await ShimClient.ConnectAsync(Ctrd, Ns, id, Ct))
            {
                var refused = await late.StatusOfAsync(late.TaskApi, "State", new StateRequest { Id = id }, StateResponse.Parser, Ct);
                Assert.Equal(StatusCode.ResourceExhausted, refused.Code);
                Assert.Contains($"too many connections to this server ({MaxConnections})", refused.Message, StringComparison.Ordinal);
            }

            // containerd's own connection goes on serving: task ls (State) and an exec (Exec, Start, Wait, Delete)
            Assert.Contains("RUNNING", await TaskLineAsync(id), StringComparison.Ordinal);
            var exec = await CtrAsync("task", "exec", "--fifo-dir", Ctrd.FifoDir, "--exec-id", "during", id, "echo", "still serving");
            Assert.Equal("still serving\n", exec.EnsureSuccess().Stdout);
            await WaitForLogAsync($"refusing connections over the bound of {MaxConnections} (first from pid {Environment.ProcessId}, uid 0)");
        }
        finally
        {
            hostile.ForEach(s => s.Dispose());
        }

        // once they are gone, so are the shim's descriptors for them
        var after = await SettledSampleAsync(shim, s => s.Fds <= before.Fds);
        Log($"shim after: {after}");
        Assert.True(after.Fds <= before.Fds, $"{after.Fds} fds after the hostile clients left, {before.Fds} before");
        await using var again = await ShimClient.ConnectAsync(Ctrd, Ns, id, Ct);
        Assert.Equal(Containerd.Types.Task.Status.Running, (await again.CallAsync("State", new StateRequest { Id = id }, StateResponse.Parser, Ct)).Status);
        // the burst's other refusals are counted in one line when connections are served again
        await WaitForLogAsync("serving new connections again;");
    }

    [Fact]
    public async Task A_peer_stalled_inside_a_frame_is_dropped_after_the_timeout_while_an_idle_client_is_kept()
    {
        OursOnly("containerd's shim waits for the rest of a frame for ever");
        const string id = "bound2";
        (await CtrAsync(RunArgs(id, detach: true, "sleep", "300"))).EnsureSuccess();
        await using var idle = await ShimClient.ConnectAsync(Ctrd, Ns, id, Ct);
        Assert.Equal(Containerd.Types.Task.Status.Running, (await idle.CallAsync("State", new StateRequest { Id = id }, StateResponse.Parser, Ct)).Status);

        var clock = Stopwatch.StartNew();
        using var halfHeader = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        using var halfPayload = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await halfHeader.ConnectAsync(new UnixDomainSocketEndPoint(idle.SocketPath), Ct);
        await halfPayload.ConnectAsync(new UnixDomainSocketEndPoint(idle.SocketPath), Ct);
        byte[] frame = StateFrame(id);
        await halfHeader.SendAsync(frame.AsMemory(0, 4), SocketFlags.None, Ct);
        await halfPayload.SendAsync(frame.AsMemory(0, frame.Length - 3), SocketFlags.None, Ct);

        Assert.Equal("closed", await AnswerAsync(halfHeader));
        Assert.Equal("closed", await AnswerAsync(halfPayload));
        Log($"both dropped after {clock.Elapsed.TotalSeconds:0.00} s");
        Assert.True(clock.Elapsed >= TimeSpan.FromSeconds(FrameTimeoutSeconds * 0.8), $"dropped after {clock.Elapsed}, before the frame timeout");
        await WaitForLogAsync($"stalled inside a frame for {FrameTimeoutSeconds} s");

        // the client idle between frames all along (longer than the timeout) is still served, and so is containerd
        Assert.Equal(Containerd.Types.Task.Status.Running, (await idle.CallAsync("State", new StateRequest { Id = id }, StateResponse.Parser, Ct)).Status);
        Assert.Contains("RUNNING", await TaskLineAsync(id), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Requests_past_the_in_flight_bound_of_a_connection_are_told_resource_exhausted_and_other_connections_go_on()
    {
        OursOnly("containerd's shim runs every request it reads");
        const string id = "bound3";
        (await CtrAsync(RunArgs(id, detach: true, "sleep", "300"))).EnsureSuccess();
        using var busy = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await busy.ConnectAsync(new UnixDomainSocketEndPoint(await ShimClient.SocketPathAsync(Ctrd, Ns, id, Ct)), Ct);

        // in one write, so the shim reads them in this order: Waits on a running container stay in
        // flight until it exits, and the State after them is one past the bound
        var burst = new List<byte>();
        uint stream = 1;
        for (int i = 0; i < MaxInFlight; i++, stream += 2)
        {
            burst.AddRange(Frame(stream, "Wait", new WaitRequest { Id = id }));
        }
        burst.AddRange(Frame(stream, "State", new StateRequest { Id = id }));
        await busy.SendAsync(burst.ToArray(), SocketFlags.None, Ct);

        var (refusedStream, refused) = await ReadResponseAsync(busy);
        Assert.Equal(stream, refusedStream);
        Assert.Equal((int)StatusCode.ResourceExhausted, refused.Status.Code);
        Assert.Equal($"ttrpc: too many requests in flight on this connection ({MaxInFlight})", refused.Status.Message);

        // containerd's connection is not held up: an exec, then the kill that ends the Waits
        var exec = await CtrAsync("task", "exec", "--fifo-dir", Ctrd.FifoDir, "--exec-id", "during", id, "echo", "still serving");
        Assert.Equal("still serving\n", exec.EnsureSuccess().Stdout);
        (await CtrAsync("task", "kill", "-s", "SIGKILL", id)).EnsureSuccess();
        for (int i = 0; i < MaxInFlight; i++)
        {
            var (waitStream, wait) = await ReadResponseAsync(busy);
            Assert.True(waitStream < refusedStream, $"answer on stream {waitStream}");
            Assert.Equal(0, wait.Status?.Code ?? 0);
            Assert.Equal(137u, WaitResponse.Parser.ParseFrom(wait.Payload).ExitStatus);
        }

        // the connection is served again once its calls have answered (each leaves the count right after its answer is written)
        var clock = Stopwatch.StartNew();
        while (true)
        {
            stream += 2;
            await busy.SendAsync(Frame(stream, "State", new StateRequest { Id = id }), SocketFlags.None, Ct);
            var (stateStream, state) = await ReadResponseAsync(busy);
            Assert.Equal(stream, stateStream);
            if ((state.Status?.Code ?? 0) == 0)
            {
                Assert.Equal(Containerd.Types.Task.Status.Stopped, StateResponse.Parser.ParseFrom(state.Payload).Status);
                break;
            }
            Assert.Equal((int)StatusCode.ResourceExhausted, state.Status!.Code);
            Assert.True(clock.Elapsed < Patience, "the connection stayed at its in-flight bound after every call answered");
            await Task.Delay(20, Ct);
        }
    }

    /// <summary>A task API request frame as containerd's line would send it.</summary>
    private byte[] Frame(uint streamId, string method, IMessage request)
    {
        string service = Ctrd.Line.Major >= 2 ? ShimClient.TaskV3 : ShimClient.TaskV2;
        var envelope = new Request { Service = service, Method = method, Payload = request.ToByteString() }.ToByteArray();
        var frame = new byte[10 + envelope.Length];
        BinaryPrimitives.WriteUInt32BigEndian(frame, (uint)envelope.Length);
        BinaryPrimitives.WriteUInt32BigEndian(frame.AsSpan(4), streamId);
        frame[8] = 1;   // request
        envelope.CopyTo(frame, 10);
        return frame;
    }

    private static async Task<(uint StreamId, Response Response)> ReadResponseAsync(Socket socket)
    {
        using var bound = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        bound.CancelAfter(Patience);
        var header = new byte[10];
        Assert.True(await ReadExactlyAsync(socket, header, bound.Token), "the shim closed the connection");
        var payload = new byte[BinaryPrimitives.ReadUInt32BigEndian(header)];
        Assert.True(await ReadExactlyAsync(socket, payload, bound.Token), "the shim closed the connection");
        return (BinaryPrimitives.ReadUInt32BigEndian(header.AsSpan(4)), Response.Parser.ParseFrom(payload));
    }

    /// <summary>A task State request frame on stream 1.</summary>
    private byte[] StateFrame(string id) => Frame(1, "State", new StateRequest { Id = id });

    /// <summary>
    /// Sends <paramref name="frame"/>, unless the shim has already refused the connection: it writes
    /// its refusal and closes as soon as it accepts, so a send after that meets a broken pipe while
    /// the refusal still waits to be read.
    /// </summary>
    private static async Task SendUnlessRefusedAsync(Socket socket, byte[] frame)
    {
        try
        {
            await socket.SendAsync(frame, SocketFlags.None, Ct);
        }
        catch (SocketException e) when (e.SocketErrorCode is SocketError.Shutdown or SocketError.ConnectionReset)
        {
            // EPIPE: the refusal is read by AnswerAsync
        }
    }

    /// <summary>"OK", "&lt;code&gt;: &lt;message&gt;" for the first answer on the socket, or "closed" when it ends without one.</summary>
    private static async Task<string> AnswerAsync(Socket socket)
    {
        using var bound = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        bound.CancelAfter(Patience);
        var header = new byte[10];
        try
        {
            if (!await ReadExactlyAsync(socket, header, bound.Token)) { return "closed"; }
            var payload = new byte[BinaryPrimitives.ReadUInt32BigEndian(header)];
            if (!await ReadExactlyAsync(socket, payload, bound.Token)) { return "closed"; }
            var response = Response.Parser.ParseFrom(payload);
            return response.Status is { Code: not 0 } status ? $"{(StatusCode)status.Code}: {status.Message}" : "OK";
        }
        catch (SocketException)
        {
            return "closed";   // reset: the shim closed it with our request unread
        }
    }

    private static async Task<bool> ReadExactlyAsync(Socket socket, Memory<byte> buffer, CancellationToken ct)
    {
        while (!buffer.IsEmpty)
        {
            int n = await socket.ReceiveAsync(buffer, SocketFlags.None, ct);
            if (n == 0) { return false; }
            buffer = buffer[n..];
        }
        return true;
    }

    /// <summary>The shim's figures once <paramref name="settled"/> holds (or the patience ran out), read every 50 ms.</summary>
    private static async Task<ProcSample> SettledSampleAsync(int pid, Func<ProcSample, bool> settled)
    {
        var clock = Stopwatch.StartNew();
        var sample = ProcStats.Sample(pid);
        while (!settled(sample) && clock.Elapsed < Patience)
        {
            await Task.Delay(50, Ct);
            sample = ProcStats.Sample(pid);
        }
        return sample;
    }

    /// <summary>Waits for the shim to have logged <paramref name="text"/> (containerd copies the shim's log into its own).</summary>
    private async Task WaitForLogAsync(string text)
    {
        var clock = Stopwatch.StartNew();
        string? line;
        while ((line = Ctrd.ReadLog().Split('\n').FirstOrDefault(l => l.Contains(text, StringComparison.Ordinal))) is null)
        {
            Assert.True(clock.Elapsed < Patience, $"the shim did not log \"{text}\"");
            await Task.Delay(50, Ct);
        }
        Log($"shim log: {line}");
    }

    private async Task<string> TaskLineAsync(string id) =>
        (await CtrAsync("task", "ls")).EnsureSuccess().Stdout.Split('\n').FirstOrDefault(l => l.StartsWith(id + " ", StringComparison.Ordinal)) ?? "";
}
