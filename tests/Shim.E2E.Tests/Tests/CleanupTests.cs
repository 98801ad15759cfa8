namespace Shim.E2E.Tests;

/// <summary>What a removed container must not leave behind.</summary>
public sealed class CleanupTests : E2ETest
{
    [Fact]
    public async Task After_removal_no_shim_process_socket_mount_runc_state_or_bundle_is_left()
    {
        const string id = "gone1";
        (await CtrAsync(RunArgs(id, detach: true, "sleep", "300"))).EnsureSuccess();

        var bundle = Ctrd.BundleDir(Ns, id);
        var address = await ShimAddressAsync(bundle);
        Assert.StartsWith("unix://", address, StringComparison.Ordinal);
        var socket = address["unix://".Length..];
        Assert.True(File.Exists(socket), $"shim socket {socket} does not exist while the container runs");
        var shims = ProcFs.ShimPids(Ctrd.Socket);
        Assert.NotEmpty(shims);
        var runcState = Path.Combine("/run/containerd/runc", Ns, id);
        Assert.True(Directory.Exists(runcState), $"no runc state at {runcState} while the container runs");

        (await CtrAsync("task", "kill", "-s", "SIGKILL", id)).EnsureSuccess();
        await Eventually(async () => (await CtrAsync("task", "ls")).Stdout.Contains("STOPPED", StringComparison.Ordinal), "task to stop");
        (await CtrAsync("task", "delete", id)).EnsureSuccess();
        (await CtrAsync("container", "rm", id)).EnsureSuccess();

        // the shim exits on its own after Shutdown; give it a bounded moment
        await Eventually(() => Task.FromResult(shims.All(p => ProcFs.Argv(p) is null)),
            $"shim process(es) {string.Join(',', shims)} to exit");
        Assert.Empty(ProcFs.ShimPids(Ctrd.Socket));
        await Eventually(() => Task.FromResult(!File.Exists(socket)), $"shim socket {socket} to be removed");
        Assert.Empty(ProcFs.MountsUnder(bundle));
        Assert.False(Directory.Exists(runcState), $"runc state {runcState} is left");
        Assert.False(Directory.Exists(bundle), $"bundle {bundle} is left");
    }

    /// <summary>
    /// The shim's address as recorded in the bundle: the `address` file the shim writes (what
    /// containerd 1.x reads on restart), or on 2.x the `bootstrap.json` containerd writes itself
    /// when the shim does not.
    /// </summary>
    private async Task<string> ShimAddressAsync(string bundle)
    {
        var addressFile = Path.Combine(bundle, "address");
        if (File.Exists(addressFile)) { return (await File.ReadAllTextAsync(addressFile, Ct)).Trim(); }
        var bootstrap = Path.Combine(bundle, "bootstrap.json");
        Assert.True(Ctrd.Line.Major >= 2 && File.Exists(bootstrap),
            $"the shim wrote no {addressFile}" + (Ctrd.Line.Major >= 2 ? " and there is no bootstrap.json" : ""));
        using var doc = System.Text.Json.JsonDocument.Parse(await File.ReadAllTextAsync(bootstrap, Ct));
        return doc.RootElement.GetProperty("address").GetString() ?? "";
    }

    private static async Task Eventually(Func<Task<bool>> condition, string what)
    {
        var until = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (!await condition())
        {
            Assert.True(DateTime.UtcNow < until, $"timed out after 10 s waiting for {what}");
            await Task.Delay(50, Ct);
        }
    }
}
