using System.Net.Sockets;
using Google.Protobuf.WellKnownTypes;

namespace Shim.Ttrpc.Tests;

/// <summary>A server listening on a unix socket in a fresh temp directory, serving until disposed.</summary>
internal sealed class TestServer : IAsyncDisposable
{
    public const string Service = "test.v1.Echo";

    private readonly string _directory;
    private readonly Socket _listener;
    private readonly Task _serving;

    public TestServer(TtrpcServiceRegistry registry, TtrpcServerOptions? options = null)
    {
        _directory = Directory.CreateTempSubdirectory("ttrpc-").FullName;
        SocketPath = Path.Combine(_directory, "s.sock");
        _listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        _listener.Bind(new UnixDomainSocketEndPoint(SocketPath));
        _listener.Listen(512);
        Server = new TtrpcServer(registry, options);
        _serving = Server.ServeAsync(_listener, CancellationToken.None);
    }

    public string SocketPath { get; }

    public TtrpcServer Server { get; }

    /// <summary>A registry with Echo (StringValue → StringValue) and Nothing (Empty → Empty).</summary>
    public static TtrpcServiceRegistry EchoRegistry()
    {
        var registry = new TtrpcServiceRegistry();
        registry.Register(Service, "Echo", StringValue.Parser,
            (StringValue request, TtrpcCallContext _) => ValueTask.FromResult(new StringValue { Value = request.Value }));
        registry.Register(Service, "Nothing", Empty.Parser,
            (Empty _, TtrpcCallContext _) => ValueTask.FromResult(new Empty()));
        return registry;
    }

    public Task<TtrpcClient> ConnectAsync() => TtrpcClient.ConnectAsync(SocketPath, TestContext.Current.CancellationToken);

    public async Task<RawConnection> ConnectRawAsync()
    {
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        await socket.ConnectAsync(new UnixDomainSocketEndPoint(SocketPath), TestContext.Current.CancellationToken);
        return new RawConnection(socket);
    }

    /// <summary>Proves the server still works: a fresh connection completes an Echo call.</summary>
    public async Task AssertHealthyAsync()
    {
        await using var client = await ConnectAsync();
        var reply = await client.CallAsync(Service, "Echo", new StringValue { Value = "ping" }, StringValue.Parser,
            timeout: TimeSpan.FromSeconds(10), ct: TestContext.Current.CancellationToken);
        Assert.Equal("ping", reply.Value);
    }

    public async ValueTask DisposeAsync()
    {
        await Server.DisposeAsync();
        await _serving;
        _listener.Dispose();
        Directory.Delete(_directory, recursive: true);
    }
}
