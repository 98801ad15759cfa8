using Google.Protobuf;
using Shim.Ttrpc;

namespace Shim.E2E.Tests;

/// <summary>
/// A direct ttrpc connection to the shim serving a container, found through the `address` file the
/// shim writes into the bundle; for requests ctr cannot express (bad input, Update).
/// </summary>
internal sealed class ShimClient : IAsyncDisposable
{
    public const string TaskV2 = "containerd.task.v2.Task";
    public const string TaskV3 = "containerd.task.v3.Task";

    private ShimClient(TtrpcClient client, string socketPath, string task)
    {
        Client = client;
        SocketPath = socketPath;
        TaskApi = task;
    }

    public TtrpcClient Client { get; }

    /// <summary>
    /// The task service the daemon's line calls: v3 from containerd 2.0 on, v2 before. containerd 2.x's
    /// own shim serves v3 only; ours serves both on one socket.
    /// </summary>
    public string TaskApi { get; }

    public string SocketPath { get; }

    public static async Task<ShimClient> ConnectAsync(PrivateContainerd ctrd, string ns, string id, CancellationToken ct)
    {
        string path = await SocketPathAsync(ctrd, ns, id, ct);
        return new ShimClient(await TtrpcClient.ConnectAsync(path, ct), path, ctrd.Line.Major >= 2 ? TaskV3 : TaskV2);
    }

    /// <summary>The socket of the shim serving <paramref name="id"/>, without connecting to it.</summary>
    public static async Task<string> SocketPathAsync(PrivateContainerd ctrd, string ns, string id, CancellationToken ct)
    {
        // the `address` file the shim writes, or (containerd 2.x with its own shim) the bootstrap.json containerd writes
        string bundle = ctrd.BundleDir(ns, id);
        string addressFile = Path.Combine(bundle, "address");
        string address;
        if (File.Exists(addressFile))
        {
            address = (await File.ReadAllTextAsync(addressFile, ct)).Trim();
        }
        else
        {
            using var bootstrap = System.Text.Json.JsonDocument.Parse(await File.ReadAllTextAsync(Path.Combine(bundle, "bootstrap.json"), ct));
            address = bootstrap.RootElement.GetProperty("address").GetString() ?? "";
        }
        return address.StartsWith("unix://", StringComparison.Ordinal) ? address["unix://".Length..] : address;
    }

    public Task<TResponse> CallAsync<TRequest, TResponse>(string method, TRequest request, MessageParser<TResponse> parser, CancellationToken ct)
        where TRequest : IMessage<TRequest>
        where TResponse : IMessage<TResponse> =>
        Client.CallAsync(TaskApi, method, request, parser, TimeSpan.FromSeconds(30), null, ct);

    /// <summary>The status code a call fails with (OK when it succeeds).</summary>
    public async Task<(StatusCode Code, string Message)> StatusOfAsync<TRequest, TResponse>(string service, string method, TRequest request, MessageParser<TResponse> parser, CancellationToken ct)
        where TRequest : IMessage<TRequest>
        where TResponse : IMessage<TResponse>
    {
        try
        {
            await Client.CallAsync(service, method, request, parser, TimeSpan.FromSeconds(30), null, ct);
            return (StatusCode.OK, "");
        }
        catch (TtrpcException ex)
        {
            return (ex.Code, ex.Message);
        }
    }

    public ValueTask DisposeAsync() => Client.DisposeAsync();
}
