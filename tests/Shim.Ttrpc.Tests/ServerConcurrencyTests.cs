using System.Net.Sockets;
using Google.Protobuf.WellKnownTypes;
using Shim.Ttrpc.Transport;

namespace Shim.Ttrpc.Tests;

public sealed class ServerConcurrencyTests
{
    private static readonly string[] Blocker = ["block"];

    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(15);

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_hundred_calls_on_one_connection_run_concurrently_even_when_some_wait_for_others()
    {
        const int waiters = 49;
        const int runners = 50;
        int finishedRunners = 0;
        var runnersDone = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var blockingGate = new ManualResetEventSlim();

        var registry = new TtrpcServiceRegistry();
        registry.Register(TestServer.Service, "Work", StringValue.Parser, async (StringValue request, TtrpcCallContext context) =>
        {
            switch (request.Value)
            {
                case "block":
                    // A handler that blocks its thread outright must not stall the read loop.
                    blockingGate.Wait(context.CancellationToken);
                    break;
                case "wait":
                    await runnersDone.Task.WaitAsync(context.CancellationToken);
                    break;
                default:
                    if (Interlocked.Increment(ref finishedRunners) == runners)
                    {
                        runnersDone.SetResult();
                        blockingGate.Set();
                    }

                    break;
            }

            return request;
        });
        await using var server = new TestServer(registry);
        await using var client = await server.ConnectAsync();

        // Blocking and waiting calls go out first, so the runners are behind them on the wire.
        var kinds = Blocker.Concat(Enumerable.Repeat("wait", waiters)).Concat(Enumerable.Repeat("run", runners)).ToArray();
        var calls = kinds.Select(kind =>
            client.CallAsync(TestServer.Service, "Work", new StringValue { Value = kind }, StringValue.Parser, timeout: Patience, ct: Ct)).ToArray();
        var replies = await Task.WhenAll(calls);

        Assert.Equal(100, replies.Length);
        Assert.Equal(kinds, replies.Select(r => r.Value));
    }

    [Fact]
    public async Task Many_connections_are_served_at_the_same_time()
    {
        const int connections = 25;
        await using var server = new TestServer(TestServer.EchoRegistry());
        var clients = await Task.WhenAll(Enumerable.Range(0, connections).Select(_ => server.ConnectAsync()));
        try
        {
            var calls = clients.SelectMany((client, c) => Enumerable.Range(0, 8).Select(i =>
                client.CallAsync(TestServer.Service, "Echo", new StringValue { Value = $"{c}/{i}" }, StringValue.Parser, ct: Ct)));
            var replies = await Task.WhenAll(calls);

            Assert.Equal(connections * 8, replies.Select(r => r.Value).Distinct().Count());
            Assert.Equal(connections, server.Server.ConnectionCount);
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
    public async Task An_accept_filter_saying_no_closes_the_connection()
    {
        ITtrpcConnection? filtered = null;
        var options = new TtrpcServerOptions
        {
            AcceptFilter = connection =>
            {
                filtered = connection;
                return false;
            },
        };
        await using var server = new TestServer(TestServer.EchoRegistry(), options);
        await using var client = await server.ConnectAsync();

        await client.Closed.WaitAsync(Patience, Ct);
        var ex = await Assert.ThrowsAsync<TtrpcException>(() =>
            client.CallAsync(TestServer.Service, "Echo", new StringValue(), StringValue.Parser, ct: Ct));

        Assert.NotNull(filtered);
        Assert.True(client.IsClosed);
        Assert.Equal(StatusCode.Unavailable, ex.Code);
        Assert.Equal(0, server.Server.ConnectionCount);
    }

    [Fact]
    public async Task An_accept_filter_saying_yes_lets_calls_through()
    {
        int asked = 0;
        await using var server = new TestServer(TestServer.EchoRegistry(), new TtrpcServerOptions
        {
            AcceptFilter = _ => Interlocked.Increment(ref asked) > 0,
        });

        await server.AssertHealthyAsync();
        Assert.Equal(1, asked);
    }

    [Fact]
    public async Task A_timeout_cancels_the_handler_token()
    {
        var handlerCancelled = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var registry = new TtrpcServiceRegistry();
        registry.Register(TestServer.Service, "Hang", Empty.Parser, async (Empty _, TtrpcCallContext context) =>
        {
            using var registration = context.CancellationToken.Register(handlerCancelled.SetResult);
            await Task.Delay(Timeout.Infinite, context.CancellationToken);
            return new Empty();
        });
        await using var server = new TestServer(registry);
        await using var client = await server.ConnectAsync();

        var ex = await Assert.ThrowsAsync<TtrpcException>(() =>
            client.CallAsync(TestServer.Service, "Hang", new Empty(), Empty.Parser, timeout: TimeSpan.FromMilliseconds(100), ct: Ct));

        Assert.Equal(StatusCode.DeadlineExceeded, ex.Code);
        await handlerCancelled.Task.WaitAsync(Patience, Ct);
        Assert.False(client.IsClosed);
    }

    [Fact]
    public async Task Pending_calls_fail_with_unavailable_when_the_server_goes_away()
    {
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var registry = new TtrpcServiceRegistry();
        registry.Register(TestServer.Service, "Hang", Empty.Parser, async (Empty _, TtrpcCallContext context) =>
        {
            started.SetResult();
            await Task.Delay(Timeout.Infinite, context.CancellationToken);
            return new Empty();
        });
        var server = new TestServer(registry);
        await using var client = await server.ConnectAsync();

        var call = client.CallAsync(TestServer.Service, "Hang", new Empty(), Empty.Parser, ct: Ct);
        await started.Task.WaitAsync(Patience, Ct);
        await server.DisposeAsync();

        var ex = await Assert.ThrowsAsync<TtrpcException>(() => call.WaitAsync(Patience, Ct));
        Assert.Equal(StatusCode.Unavailable, ex.Code);
        await client.Closed.WaitAsync(Patience, Ct);
    }

    [Fact]
    public async Task Graceful_shutdown_lets_an_in_flight_call_answer_before_closing()
    {
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var registry = TestServer.EchoRegistry();
        registry.Register(TestServer.Service, "Slow", StringValue.Parser, async (StringValue request, TtrpcCallContext _) =>
        {
            started.SetResult();
            await release.Task;
            return request;
        });
        await using var server = new TestServer(registry);
        await using var busy = await server.ConnectAsync();
        await using var idle = await server.ConnectAsync();
        await idle.CallAsync(TestServer.Service, "Echo", new StringValue(), StringValue.Parser, ct: Ct);

        var call = busy.CallAsync(TestServer.Service, "Slow", new StringValue { Value = "done" }, StringValue.Parser, ct: Ct);
        await started.Task.WaitAsync(Patience, Ct);
        var shutdown = server.Server.ShutdownAsync(Ct);

        await idle.Closed.WaitAsync(Patience, Ct);
        Assert.False(shutdown.IsCompleted);
        var refused = await Assert.ThrowsAsync<TtrpcException>(() =>
            busy.CallAsync(TestServer.Service, "Echo", new StringValue(), StringValue.Parser, ct: Ct));
        Assert.Equal(StatusCode.Unavailable, refused.Code);

        release.SetResult();
        Assert.Equal("done", (await call.WaitAsync(Patience, Ct)).Value);
        await shutdown.WaitAsync(Patience, Ct);
        await busy.Closed.WaitAsync(Patience, Ct);
        Assert.Equal(0, server.Server.ConnectionCount);
    }

    [Fact]
    public async Task Shutdown_past_its_deadline_cancels_handlers_and_closes_connections()
    {
        var handlerCancelled = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var registry = new TtrpcServiceRegistry();
        registry.Register(TestServer.Service, "Hang", Empty.Parser, async (Empty _, TtrpcCallContext context) =>
        {
            using var registration = context.CancellationToken.Register(handlerCancelled.SetResult);
            started.SetResult();
            await Task.Delay(Timeout.Infinite, context.CancellationToken);
            return new Empty();
        });
        await using var server = new TestServer(registry);
        await using var client = await server.ConnectAsync();

        var call = client.CallAsync(TestServer.Service, "Hang", new Empty(), Empty.Parser, ct: Ct);
        await started.Task.WaitAsync(Patience, Ct);
        using var deadline = new CancellationTokenSource(TimeSpan.FromMilliseconds(100));
        await server.Server.ShutdownAsync(deadline.Token).WaitAsync(Patience, Ct);

        await handlerCancelled.Task.WaitAsync(Patience, Ct);
        var ex = await Assert.ThrowsAsync<TtrpcException>(() => call.WaitAsync(Patience, Ct));
        Assert.Equal(StatusCode.Unavailable, ex.Code);
    }

    [Fact]
    public async Task Connections_arriving_after_shutdown_are_not_served()
    {
        await using var server = new TestServer(TestServer.EchoRegistry());
        await server.Server.ShutdownAsync(Ct);

        var (left, right) = await ConnectedPairAsync(server.SocketPath);
        await server.Server.ServeConnectionAsync(right, Ct).WaitAsync(Patience, Ct);
        await using var client = new TtrpcClient(left);

        // a served connection would answer "ping"; this one was closed without reading a request
        var ex = await Assert.ThrowsAsync<TtrpcException>(() =>
            client.CallAsync(TestServer.Service, "Echo", new StringValue { Value = "ping" }, StringValue.Parser, ct: Ct).WaitAsync(Patience, Ct));
        Assert.Equal(StatusCode.Unavailable, ex.Code);
        await client.Closed.WaitAsync(Patience, Ct);
        Assert.Equal(0, server.Server.ConnectionCount);
    }

    private static async Task<(Socket Client, Socket Server)> ConnectedPairAsync(string existingPath)
    {
        var path = existingPath + ".pair";
        using var listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        listener.Bind(new UnixDomainSocketEndPoint(path));
        listener.Listen(1);
        var client = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await client.ConnectAsync(new UnixDomainSocketEndPoint(path), Ct);
        var server = await listener.AcceptAsync(Ct);
        File.Delete(path);
        return (client, server);
    }
}
