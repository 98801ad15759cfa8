using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net.Sockets;
using CsCheck;
using Google.Protobuf;
using Shim.Core.Errors;
using Shim.Ttrpc.Wire;

namespace Shim.Ttrpc.Fuzz.Tests;

/// <summary>
/// Fuzz inputs through a real <see cref="TtrpcServer"/> on a unix socket, serving the real task
/// service with a live container "c1" (and whatever fuzzed Creates add; see <see cref="LiveFuzzService"/>):
/// one connection per input, four at a time. The in-process decoder predicts which error answers
/// the server owes; the server must send exactly those (plus answers to dispatched calls), as
/// well-formed frames, then close when the input ends, and keep serving valid calls throughout.
/// </summary>
[Collection(FuzzCollection.Name)]
public sealed class LiveServerFuzzTests : IAsyncLifetime
{
    private const int Inputs = 20_000;
    private const int HealthEvery = 1_000;
    private static readonly TimeSpan AnswerDeadline = TimeSpan.FromSeconds(10);

    private readonly string _directory = Directory.CreateTempSubdirectory("rcs-fuzz-").FullName;
    private readonly List<string> _log = [];
    private readonly Socket _listener;
    private readonly TtrpcServer _server;
    private readonly Task _serving;
    private readonly TtrpcServiceRegistry _predictor = FuzzTaskService.NewRegistry();
    private readonly LiveFuzzService _live = new();
    private readonly ConcurrentDictionary<string, long> _okByMethod = new(StringComparer.Ordinal);

    public LiveServerFuzzTests()
    {
        SocketPath = Path.Combine(_directory, "s.sock");
        _listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        _listener.Bind(new UnixDomainSocketEndPoint(SocketPath));
        _listener.Listen(64);
        _server = new TtrpcServer(_live.Registry, new TtrpcServerOptions
        {
            ErrorMapper = StatusMapping.ToStatus,
            Log = m =>
            {
                lock (_log)
                {
                    _log.Add(m);
                }
            },
        });
        _serving = _server.ServeAsync(_listener, CancellationToken.None);
    }

    private string SocketPath { get; }

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>Container "c1" is created and started before the first input, as containerd would.</summary>
    public async ValueTask InitializeAsync()
    {
        await _live.Service.CreateAsync(LiveFuzzService.LiveCreate("c1"), Ct);
        await _live.Service.StartAsync(new Containerd.Task.V2.StartRequest { Id = "c1" }, Ct);
    }

    [Fact]
    public async Task Twenty_thousand_inputs_get_exactly_the_predicted_answers_and_valid_calls_keep_working()
    {
        long sent = 0, screened = 0, frames = 0, healthChecks = 0;
        var clock = Stopwatch.StartNew();
        await FrameGen.Input.SampleAsync(async input =>
        {
            var prediction = Predict(input);
            if (prediction.Screened)
            {
                // a call that would act outside the fixture or block by design (LiveFuzzService.IsScreened)
                Interlocked.Increment(ref screened);
                return;
            }

            Interlocked.Add(ref frames, await ExchangeAsync(input, prediction));
            if (Interlocked.Increment(ref sent) % HealthEvery == 0)
            {
                await AssertServingAsync();
                Interlocked.Increment(ref healthChecks);
            }
        }, iter: Inputs, threads: 4, print: FrameGen.Hex);

        await AssertServingAsync();
        clock.Stop();

        // every connection was closed by the server once its input ended
        var until = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (_server.ConnectionCount > 1 && DateTime.UtcNow < until)
        {
            await Task.Delay(20, Ct);
        }

        TestContext.Current.TestOutputHelper?.WriteLine(
            $"fuzz live server: {sent} inputs over {sent} connections in {clock.Elapsed.TotalSeconds:F1} s, " +
            $"{frames} answer frames checked, {healthChecks + 1} health checks, {screened} inputs screened, {_live.Created} containers created, " +
            $"OK answers: {string.Join(", ", _okByMethod.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => $"{kv.Key} {kv.Value}"))}");
        Assert.True(sent + screened >= Inputs, $"only {sent + screened} of {Inputs} inputs ran");
        // the handlers ran against live containers: fuzzed Creates made containers, Execs were stored in them
        Assert.True(_live.Created > 1, $"no fuzzed Create reached runc create ({_live.Created} containers)");
        foreach (string method in (string[])["Create", "Exec", "State", "Kill", "Pids", "Start"])
        {
            Assert.True(_okByMethod.GetValueOrDefault(method) > 0, $"no fuzzed {method} succeeded on a live container");
        }
        Assert.InRange(_server.ConnectionCount, 0, 1);
        lock (_log)
        {
            Assert.DoesNotContain(_log, m => m.Contains("unexpectedly", StringComparison.Ordinal)
                || m.Contains("answering", StringComparison.Ordinal) || m.Contains("mapper threw", StringComparison.Ordinal));
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _server.DisposeAsync();
        await _serving;
        _listener.Dispose();
        await _live.DisposeAsync();
        Directory.Delete(_directory, recursive: true);
    }

    /// <summary>A valid call still succeeds (Connect) and a valid call on nothing fails properly (State: NotFound).</summary>
    private async Task AssertServingAsync()
    {
        await using var client = await TtrpcClient.ConnectAsync(SocketPath, Ct);
        var connected = await client.CallAsync(FrameBuilder.Services[0], "Connect", new Containerd.Task.V2.ConnectRequest { Id = "c1" },
            Containerd.Task.V2.ConnectResponse.Parser, TimeSpan.FromSeconds(10), null, Ct);
        Assert.Equal((uint)Environment.ProcessId, connected.ShimPid);
        var state = await Assert.ThrowsAsync<TtrpcException>(() => client.CallAsync(FrameBuilder.Services[1], "State",
            new Containerd.Task.V2.StateRequest { Id = "nope" }, Containerd.Task.V2.StateResponse.Parser, TimeSpan.FromSeconds(10), null, Ct));
        Assert.Equal(StatusCode.NotFound, state.Code);
    }

    private Prediction Predict(byte[] input)
    {
        var prediction = new Prediction();
        RequestDecoder.DecodeStream(input, _predictor, prediction);
        return prediction;
    }

    /// <summary>Sends one input on a fresh connection, reads until the server closes, checks the answers; returns their count.</summary>
    private async Task<int> ExchangeAsync(byte[] input, Prediction prediction)
    {
        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await socket.ConnectAsync(new UnixDomainSocketEndPoint(SocketPath), Ct);
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        deadline.CancelAfter(AnswerDeadline);

        // read while sending: the server may answer before it has read everything. The end of the
        // input is sent only once every call it dispatched has answered (or the server hung up):
        // the server cancels what is still running when its client leaves, and the handlers, with
        // their live containers, are what this test is for.
        var answered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var reading = Shim.Ttrpc.Fuzz.Targets.SocketTarget.ReadToEndAsync(socket, prediction.Rejections.Count + prediction.Dispatches.Count, answered, deadline.Token);
        try
        {
            await socket.SendAsync(input, SocketFlags.None, deadline.Token);
            await Task.WhenAny(answered.Task, reading).WaitAsync(deadline.Token);
            socket.Shutdown(SocketShutdown.Send);
        }
        catch (SocketException)
        {
            // the server may hang up first; what it sent until then is still checked
        }
        catch (OperationCanceledException) when (!Ct.IsCancellationRequested)
        {
            // no answer in time: reported below as a hang
        }

        byte[] received;
        try
        {
            received = await reading;
        }
        catch (OperationCanceledException) when (!Ct.IsCancellationRequested)
        {
            throw new InvalidOperationException(
                $"the server neither answered nor closed within {AnswerDeadline.TotalSeconds} s (hang) on {FrameGen.Hex(input)}");
        }

        return Check(received, prediction, input, _okByMethod);
    }

    private static int Check(byte[] received, Prediction prediction, byte[] input, ConcurrentDictionary<string, long> okByMethod)
    {
        var owed = new List<(uint StreamId, StatusCode Code)>(prediction.Rejections);
        var dispatched = new List<uint>(prediction.Dispatches);
        var bytes = received.AsSpan();
        int count = 0;
        while (!bytes.IsEmpty)
        {
            Assert.True(bytes.Length >= FrameCodec.HeaderSize, $"a partial frame header at the end of the answers to {FrameGen.Hex(input)}");
            var header = FrameCodec.Read(bytes);
            Assert.True(header.Type == FrameType.Response && header.Flags == 0 && !header.IsOversized,
                $"bad answer header {header} to {FrameGen.Hex(input)}");
            Assert.True(bytes.Length >= FrameCodec.HeaderSize + header.Length, $"a partial answer frame to {FrameGen.Hex(input)}");
            var response = Response.Parser.ParseFrom(bytes.Slice(FrameCodec.HeaderSize, (int)header.Length));
            bytes = bytes[(FrameCodec.HeaderSize + (int)header.Length)..];
            count++;

            var code = (StatusCode)(response.Status?.Code ?? 0);
            int owedAt = owed.FindIndex(o => o.StreamId == header.StreamId && o.Code == code);
            if (owedAt >= 0)
            {
                owed.RemoveAt(owedAt);
                continue;
            }

            Assert.True(dispatched.Remove(header.StreamId),
                $"unexpected answer on stream {header.StreamId} ({code} {response.Status?.Message}) to {FrameGen.Hex(input)}");
            if (code == StatusCode.OK && prediction.Methods.TryGetValue(header.StreamId, out string? method))
            {
                okByMethod.AddOrUpdate(method, 1, static (_, n) => n + 1);
            }
        }

        Assert.True(owed.Count == 0,
            $"the server did not send the error answers {string.Join(", ", owed)} to {FrameGen.Hex(input)}");
        return count;
    }

    /// <summary>What the decoder says the server owes: every rejection (answered in order, before EOF), and which calls it runs.</summary>
    private sealed class Prediction : IDecodeSink
    {
        public List<(uint StreamId, StatusCode Code)> Rejections { get; } = [];

        public List<uint> Dispatches { get; } = [];

        public Dictionary<uint, string> Methods { get; } = [];

        public bool Screened { get; private set; }

        public void Rejected(uint streamId, StatusCode code, string message) => Rejections.Add((streamId, code));

        public void Dispatched(uint streamId, Request request, MethodHandler handler, IMessage message)
        {
            Dispatches.Add(streamId);
            Methods[streamId] = request.Method;
            Screened |= LiveFuzzService.IsScreened(request.Method, message);
        }
    }
}
