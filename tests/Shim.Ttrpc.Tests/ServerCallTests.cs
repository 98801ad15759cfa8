using Google.Protobuf.WellKnownTypes;

namespace Shim.Ttrpc.Tests;

public sealed class ServerCallTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    [Fact]
    public async Task A_unary_call_round_trips_through_a_unix_socket()
    {
        await using var server = new TestServer(TestServer.EchoRegistry());
        await using var client = await server.ConnectAsync();

        var reply = await client.CallAsync(TestServer.Service, "Echo", new StringValue { Value = "hello" }, StringValue.Parser, ct: Ct);

        Assert.Equal("hello", reply.Value);
    }

    [Fact]
    public async Task An_empty_message_round_trips_as_an_empty_payload()
    {
        await using var server = new TestServer(TestServer.EchoRegistry());
        await using var client = await server.ConnectAsync();

        var reply = await client.CallAsync(TestServer.Service, "Nothing", new Empty(), Empty.Parser, ct: Ct);

        Assert.Equal(new Empty(), reply);
    }

    [Fact]
    public async Task Sequential_calls_share_one_connection()
    {
        await using var server = new TestServer(TestServer.EchoRegistry());
        await using var client = await server.ConnectAsync();

        for (int i = 0; i < 20; i++)
        {
            var reply = await client.CallAsync(TestServer.Service, "Echo", new StringValue { Value = $"n{i}" }, StringValue.Parser, ct: Ct);
            Assert.Equal($"n{i}", reply.Value);
        }

        Assert.Equal(1, server.Server.ConnectionCount);
    }

    [Fact]
    public async Task An_unknown_service_is_unimplemented_and_names_the_service()
    {
        await using var server = new TestServer(TestServer.EchoRegistry());
        await using var client = await server.ConnectAsync();

        var ex = await Assert.ThrowsAsync<TtrpcException>(() =>
            client.CallAsync("containerd.task.v3.Task", "Create", new Empty(), Empty.Parser, ct: Ct));

        Assert.Equal(StatusCode.Unimplemented, ex.Code);
        Assert.Equal("service containerd.task.v3.Task", ex.Message);
    }

    [Fact]
    public async Task An_unknown_method_is_unimplemented_and_names_the_method()
    {
        await using var server = new TestServer(TestServer.EchoRegistry());
        await using var client = await server.ConnectAsync();

        var ex = await Assert.ThrowsAsync<TtrpcException>(() =>
            client.CallAsync(TestServer.Service, "Missing", new Empty(), Empty.Parser, ct: Ct));

        Assert.Equal(StatusCode.Unimplemented, ex.Code);
        Assert.Equal("method Missing", ex.Message);
    }

    public static TheoryData<string, StatusCode, string> Failures => new()
    {
        { "notfound", StatusCode.NotFound, "container c1 not found" },
        { "precondition", StatusCode.FailedPrecondition, "process is stopped" },
        { "plain", StatusCode.Unknown, "runc exited with status 1" },
        { "cancelled", StatusCode.Cancelled, "context canceled" },
    };

    [Theory]
    [MemberData(nameof(Failures))]
    public async Task Handler_exceptions_become_status_codes(string kind, StatusCode code, string message)
    {
        var registry = new TtrpcServiceRegistry();
        registry.Register(TestServer.Service, "Fail", StringValue.Parser, (StringValue request, TtrpcCallContext _) =>
            request.Value switch
            {
                "notfound" => throw new TtrpcException(StatusCode.NotFound, "container c1 not found"),
                "precondition" => throw new TtrpcException(StatusCode.FailedPrecondition, "process is stopped"),
                "cancelled" => throw new OperationCanceledException(),
                _ => ValueTask.FromException<Empty>(new InvalidOperationException("runc exited with status 1")),
            });
        await using var server = new TestServer(registry);
        await using var client = await server.ConnectAsync();

        var ex = await Assert.ThrowsAsync<TtrpcException>(() =>
            client.CallAsync(TestServer.Service, "Fail", new StringValue { Value = kind }, Empty.Parser, ct: Ct));

        Assert.Equal(code, ex.Code);
        Assert.Equal(message, ex.Message);
    }

    [Fact]
    public async Task A_custom_error_mapper_chooses_the_status()
    {
        var registry = new TtrpcServiceRegistry();
        registry.Register(TestServer.Service, "Fail", Empty.Parser, (Empty _, TtrpcCallContext _) =>
            ValueTask.FromException<Empty>(new KeyNotFoundException("exec e2")));
        var options = new TtrpcServerOptions
        {
            ErrorMapper = ex => ex is KeyNotFoundException ? (StatusCode.NotFound, $"process does not exist {ex.Message}") : (StatusCode.Unknown, ex.Message),
        };
        await using var server = new TestServer(registry, options);
        await using var client = await server.ConnectAsync();

        var ex = await Assert.ThrowsAsync<TtrpcException>(() =>
            client.CallAsync(TestServer.Service, "Fail", new Empty(), Empty.Parser, ct: Ct));

        Assert.Equal(StatusCode.NotFound, ex.Code);
        Assert.Equal("process does not exist exec e2", ex.Message);
    }

    [Fact]
    public async Task An_error_mapper_answering_OK_still_reports_a_failure()
    {
        var registry = new TtrpcServiceRegistry();
        registry.Register(TestServer.Service, "Fail", Empty.Parser, (Empty _, TtrpcCallContext _) =>
            ValueTask.FromException<Empty>(new InvalidOperationException("boom")));
        await using var server = new TestServer(registry, new TtrpcServerOptions { ErrorMapper = ex => (StatusCode.OK, ex.Message) });
        await using var client = await server.ConnectAsync();

        var ex = await Assert.ThrowsAsync<TtrpcException>(() =>
            client.CallAsync(TestServer.Service, "Fail", new Empty(), Empty.Parser, ct: Ct));

        Assert.Equal(StatusCode.Unknown, ex.Code);
    }

    [Fact]
    public async Task Metadata_and_names_reach_the_handler()
    {
        TtrpcCallContext? seen = null;
        var registry = new TtrpcServiceRegistry();
        registry.Register(TestServer.Service, "Look", Empty.Parser, (Empty _, TtrpcCallContext context) =>
        {
            seen = context;
            return ValueTask.FromResult(new Empty());
        });
        await using var server = new TestServer(registry);
        await using var client = await server.ConnectAsync();

        KeyValuePair<string, string>[] metadata = [new("containerd-namespace-ttrpc", "k8s.io"), new("traceparent", "00-abc")];
        await client.CallAsync(TestServer.Service, "Look", new Empty(), Empty.Parser, metadata: metadata, ct: Ct);

        Assert.NotNull(seen);
        Assert.Equal(TestServer.Service, seen.Service);
        Assert.Equal("Look", seen.Method);
        Assert.Equal(metadata, seen.Metadata);
        Assert.Equal("k8s.io", seen.GetMetadata("containerd-namespace-ttrpc"));
    }

    [Fact]
    public void Registering_the_same_method_twice_is_refused()
    {
        var registry = TestServer.EchoRegistry();
        Assert.Throws<InvalidOperationException>(() => registry.Register(TestServer.Service, "Echo", StringValue.Parser,
            (StringValue r, TtrpcCallContext _) => ValueTask.FromResult(r)));
    }
}
