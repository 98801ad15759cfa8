using Google.Protobuf.WellKnownTypes;
using Shim.Core.Transport;
using Shim.Os;
using Shim.Ttrpc;
using Shim.Os.Io;
using Shim.Ttrpc.Transport;

namespace Shim.Core.Tests.Transport;

/// <summary>A real ttrpc server and client talking over unix sockets driven by the io-loop.</summary>
public sealed class LoopTransportTests : IAsyncDisposable
{
    private const string Service = "test.v1.Echo";
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(20);

    private readonly string _directory = Directory.CreateTempSubdirectory("loop-ttrpc-").FullName;
    private readonly LoopListener _listener;
    private readonly TtrpcServer _server;
    private readonly Task _serving;
    private readonly TaskCompletionSource _hangEntered = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private ITtrpcConnection? _filtered;

    public LoopTransportTests()
    {
        var registry = new TtrpcServiceRegistry();
        registry.Register(Service, "Echo", StringValue.Parser,
            (StringValue request, TtrpcCallContext _) => ValueTask.FromResult(new StringValue { Value = request.Value }));
        registry.Register(Service, "Slow", StringValue.Parser, async (StringValue request, TtrpcCallContext context) =>
        {
            await Task.Delay(Random.Shared.Next(1, 20), context.CancellationToken);
            return new StringValue { Value = request.Value };
        });
        registry.Register(Service, "Hang", Empty.Parser, async (Empty _, TtrpcCallContext context) =>
        {
            _hangEntered.TrySetResult();
            await Task.Delay(Timeout.Infinite, context.CancellationToken);
            return new Empty();
        });
        SocketPath = Path.Combine(_directory, "s.sock");
        _listener = LoopListener.Bind(IoLoop.Shared, SocketPath);
        _server = new TtrpcServer(registry, new TtrpcServerOptions
        {
            AcceptFilter = connection =>
            {
                _filtered = connection;
                return connection is LoopTtrpcConnection loop && loop.Socket.PeerCredentials().Uid == ProcessInfo.EffectiveUid;
            },
        });
        _serving = _server.ServeAsync(new LoopTtrpcListener(_listener), CancellationToken.None);
    }

    private string SocketPath { get; }

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_call_round_trips_and_the_accept_filter_sees_the_loop_connection()
    {
        await using var client = await ConnectAsync();
        var reply = await client.CallAsync(Service, "Echo", new StringValue { Value = "ping" }, StringValue.Parser, ct: Ct);

        Assert.Equal("ping", reply.Value);
        Assert.IsType<LoopTtrpcConnection>(_filtered);
    }

    [Fact]
    public async Task A_message_larger_than_the_socket_buffer_arrives_whole()
    {
        await using var client = await ConnectAsync();
        string big = new('x', 3 * 1024 * 1024);
        var reply = await client.CallAsync(Service, "Echo", new StringValue { Value = big }, StringValue.Parser, ct: Ct);
        Assert.Equal(big, reply.Value);
    }

    [Fact]
    public async Task Concurrent_calls_on_several_connections_get_their_own_answers()
    {
        var clients = await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => ConnectAsync()));
        try
        {
            var calls = clients.SelectMany((client, c) => Enumerable.Range(0, 50).Select(async i =>
            {
                string value = $"{c}/{i}";
                var reply = await client.CallAsync(Service, "Slow", new StringValue { Value = value }, StringValue.Parser, ct: Ct);
                Assert.Equal(value, reply.Value);
            }));
            await Task.WhenAll(calls).WaitAsync(Patience, Ct);
            Assert.Equal(4, _server.ConnectionCount);
        }
        finally
        {
            foreach (var client in clients)
            {
                await client.DisposeAsync();
            }
        }
    }

    [Fact]
    public async Task Cancelling_a_call_leaves_the_connection_usable()
    {
        await using var client = await ConnectAsync();
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        var hang = client.CallAsync(Service, "Hang", new Empty(), Empty.Parser, ct: cts.Token);
        await _hangEntered.Task.WaitAsync(Patience, Ct);
        await cts.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => hang.WaitAsync(Patience, Ct));
        var reply = await client.CallAsync(Service, "Echo", new StringValue { Value = "still here" }, StringValue.Parser, ct: Ct);
        Assert.Equal("still here", reply.Value);
    }

    [Fact]
    public async Task A_client_that_goes_away_is_dropped_by_the_server()
    {
        // served by hand, so the test can wait for the server to finish with exactly this connection
        using var listener = LoopListener.Bind(IoLoop.Shared, Path.Combine(_directory, "by-hand.sock"));
        var accepting = new LoopTtrpcListener(listener).AcceptAsync(Ct);
        var client = new TtrpcClient(await LoopTtrpcConnection.ConnectAsync(IoLoop.Shared, Path.Combine(_directory, "by-hand.sock"), Ct));
        var served = _server.ServeConnectionAsync(await accepting, Ct);
        await client.CallAsync(Service, "Echo", new StringValue(), StringValue.Parser, ct: Ct);
        Assert.Equal(1, _server.ConnectionCount);

        await client.DisposeAsync();

        await served.WaitAsync(Patience, Ct);
        Assert.Equal(0, _server.ConnectionCount);
    }

    [Fact]
    public async Task Stopping_the_server_fails_a_pending_call_with_unavailable_and_closes_the_client()
    {
        await using var client = await ConnectAsync();
        var hang = client.CallAsync(Service, "Hang", new Empty(), Empty.Parser, ct: Ct);
        await _hangEntered.Task.WaitAsync(Patience, Ct);

        await _server.DisposeAsync();
        var ex = await Assert.ThrowsAsync<TtrpcException>(() => hang.WaitAsync(Patience, Ct));
        Assert.Equal(StatusCode.Unavailable, ex.Code);
        await client.Closed.WaitAsync(Patience, Ct);
    }

    [Fact]
    public async Task Connecting_to_a_missing_socket_fails_with_an_io_error()
    {
        await Assert.ThrowsAsync<IOException>(() =>
            LoopTtrpcConnection.ConnectAsync(IoLoop.Shared, Path.Combine(_directory, "missing"), Ct).AsTask());
    }

    public async ValueTask DisposeAsync()
    {
        await _server.DisposeAsync();
        await _serving;
        _listener.Dispose();
        Directory.Delete(_directory, recursive: true);
    }

    private async Task<TtrpcClient> ConnectAsync() =>
        new(await LoopTtrpcConnection.ConnectAsync(IoLoop.Shared, SocketPath, Ct));
}
