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

    private ShimClient(TtrpcClient client, string socketPath)
    {
        Client = client;
        SocketPath = socketPath;
    }

    public TtrpcClient Client { get; }

    public string SocketPath { get; }

    public static async Task<ShimClient> ConnectAsync(PrivateContainerd ctrd, string ns, string id, CancellationToken ct)
    {
        string bundle = ctrd.BundleDir(ns, id);
        string addressFile = Path.Combine(bundle, "address");
        // containerd 2.x keeps the address in bootstrap.json; containerd's own shim then writes no address file
        string address = File.Exists(addressFile)
            ? (await File.ReadAllTextAsync(addressFile, ct)).Trim()
            : System.Text.Json.JsonDocument.Parse(await File.ReadAllBytesAsync(Path.Combine(bundle, "bootstrap.json"), ct)).RootElement.GetProperty("address").GetString() ?? "";
        string path = address.StartsWith("unix://", StringComparison.Ordinal) ? address["unix://".Length..] : address;
        return new ShimClient(await TtrpcClient.ConnectAsync(path, ct), path);
    }

    public Task<TResponse> CallAsync<TRequest, TResponse>(string method, TRequest request, MessageParser<TResponse> parser, CancellationToken ct)
        where TRequest : IMessage<TRequest>
        where TResponse : IMessage<TResponse> =>
        Client.CallAsync(TaskV2, method, request, parser, TimeSpan.FromSeconds(30), null, ct);

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
