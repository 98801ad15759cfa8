using System.Text.Json.Nodes;
using Containerd.Task.V2;
using Shim.Protos;
using Shim.Ttrpc;

namespace Shim.E2E.Tests;

/// <summary>
/// runc fails (issue 6): a Create sent straight to a serving shim with a broken bundle or a runtime
/// binary that does not exist fails with a status whose message names the operation and carries
/// runc's (or the OS's) own words; the shim keeps serving and nothing of the failed container stays.
/// </summary>
public sealed class RuncFailureTests : E2ETest
{
    /// <summary>A bundle of our own next to containerd's, holding the serving container's config.json changed by <paramref name="edit"/>.</summary>
    private async Task<string> HandMadeBundleAsync(string id, Func<string, string> edit)
    {
        string config = await File.ReadAllTextAsync(Path.Combine(Ctrd.BundleDir(Ns, "serving"), "config.json"), Ct);
        string bundle = Path.Combine(Ctrd.Dir, "bundles", id);
        Directory.CreateDirectory(bundle);
        await File.WriteAllTextAsync(Path.Combine(bundle, "config.json"), edit(config), Ct);
        return bundle;
    }

    /// <summary>The serving container's config with another id's cgroup and the given process args.</summary>
    private string WithArgs(string config, string id, params string[] args)
    {
        var spec = JsonNode.Parse(config)!.AsObject();
        spec["process"]!["args"] = new JsonArray([.. args.Select(a => (JsonNode)JsonValue.Create(a))]);
        spec["linux"]!["cgroupsPath"] = $"/{Ns}/{id}";
        return spec.ToJsonString();
    }

    /// <summary>Nothing of <paramref name="id"/> is left: no runc state, no mount in its bundle, no cgroup, no process.</summary>
    private void AssertNothingLeftOf(string id, string bundle)
    {
        Assert.False(Directory.Exists(Path.Combine("/run/containerd/runc", Ns, id)), $"runc state of {id} left behind");
        Assert.Empty(ProcFs.MountsUnder(bundle));
        foreach (var controller in Directory.GetDirectories("/sys/fs/cgroup").Append("/sys/fs/cgroup"))
        {
            Assert.False(Directory.Exists(Path.Combine(controller, Ns, id)), $"cgroup {Path.Combine(controller, Ns, id)} left behind");
        }
        // a half-made container's runc init would be reparented to the shim (its subreaper)
        int shim = ProcFs.ShimPids(Ctrd.Socket, "serving").Single();
        int servingInit = int.Parse(File.ReadAllText(Path.Combine(Ctrd.BundleDir(Ns, "serving"), "init.pid")).Trim(), System.Globalization.CultureInfo.InvariantCulture);
        var children = ProcFs.Pids().Where(pid => ProcStats.Stat(pid) is { PPid: var parent } && parent == shim).ToList();
        Assert.True(children.SequenceEqual([servingInit]), $"children of shim {shim} after the failed create of {id}: {string.Join(", ", children.Select(c => $"{c} {string.Join(' ', ProcFs.Argv(c) ?? [])}"))}");
    }

    private async Task<ShimClient> ServingShimAsync()
    {
        (await CtrAsync(RunArgs("serving", detach: true, "sleep", "300"))).EnsureSuccess();
        return await ShimClient.ConnectAsync(Ctrd, Ns, "serving", Ct);
    }

    private static async Task AssertStillServingAsync(ShimClient shim)
    {
        var state = await shim.CallAsync("State", new StateRequest { Id = "serving" }, StateResponse.Parser, Ct);
        Assert.Equal(Containerd.Types.Task.Status.Running, state.Status);
    }

    [Fact]
    public async Task Create_with_a_missing_process_binary_names_create_and_carries_runcs_error()
    {
        OursOnly("the message format is ours");
        await using var shim = await ServingShimAsync();
        string bundle = await HandMadeBundleAsync("nobin", c => WithArgs(c, "nobin", "/no/such/program"));

        var (code, message) = await shim.StatusOfAsync(shim.TaskApi, "Create", new CreateTaskRequest { Id = "nobin", Bundle = bundle }, CreateTaskResponse.Parser, Ct);
        Log($"missing process binary: {code}: {message}");

        Assert.Equal(StatusCode.Unknown, code);   // as the Go shim: runc's failure is no containerd error class
        Assert.StartsWith("runc create failed: ", message, StringComparison.Ordinal);
        Assert.DoesNotContain("failed: runc create failed", message, StringComparison.Ordinal);
        Assert.Contains("/no/such/program", message, StringComparison.Ordinal);           // runc's own text
        Assert.Contains("no such file or directory", message, StringComparison.Ordinal);
        AssertNothingLeftOf("nobin", bundle);
        await AssertStillServingAsync(shim);

        // the id is free again: the same bundle, fixed, creates and runs
        await File.WriteAllTextAsync(Path.Combine(bundle, "config.json"), WithArgs(await File.ReadAllTextAsync(Path.Combine(bundle, "config.json"), Ct), "nobin", "sleep", "300"), Ct);
        var created = await shim.CallAsync("Create", new CreateTaskRequest { Id = "nobin", Bundle = bundle }, CreateTaskResponse.Parser, Ct);
        Assert.True(created.Pid > 0);
        await shim.CallAsync("Delete", new DeleteRequest { Id = "nobin" }, DeleteResponse.Parser, Ct);
        AssertNothingLeftOf("nobin", bundle);
    }

    [Fact]
    public async Task Create_with_a_config_that_is_no_json_or_has_a_bad_field_names_create_and_carries_runcs_error()
    {
        OursOnly("the message format is ours");
        await using var shim = await ServingShimAsync();

        string garbled = await HandMadeBundleAsync("garbled", c => c[..(c.Length / 2)]);
        var (code, message) = await shim.StatusOfAsync(shim.TaskApi, "Create", new CreateTaskRequest { Id = "garbled", Bundle = garbled }, CreateTaskResponse.Parser, Ct);
        Log($"truncated config.json: {code}: {message}");
        Assert.Equal(StatusCode.Unknown, code);
        Assert.StartsWith("runc create failed: ", message, StringComparison.Ordinal);
        Assert.Contains("unexpected EOF", message, StringComparison.Ordinal);   // runc's words for a spec that ends half-way
        Assert.DoesNotContain("failed: runc create failed", message, StringComparison.Ordinal);
        AssertNothingLeftOf("garbled", garbled);

        string badField = await HandMadeBundleAsync("badfield", c =>
        {
            var spec = JsonNode.Parse(WithArgs(c, "badfield", "sleep", "1"))!.AsObject();
            spec["process"]!["cwd"] = "relative/dir";   // runc: cwd must be an absolute path
            return spec.ToJsonString();
        });
        (code, message) = await shim.StatusOfAsync(shim.TaskApi, "Create", new CreateTaskRequest { Id = "badfield", Bundle = badField }, CreateTaskResponse.Parser, Ct);
        Log($"relative cwd: {code}: {message}");
        Assert.Equal(StatusCode.Unknown, code);
        Assert.StartsWith("runc create failed: ", message, StringComparison.Ordinal);
        Assert.Contains("cwd", message, StringComparison.OrdinalIgnoreCase);   // runc: "Cwd must be an absolute path"
        AssertNothingLeftOf("badfield", badField);

        await AssertStillServingAsync(shim);
        Assert.Contains("RUNNING", (await CtrAsync("task", "ls")).EnsureSuccess().Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Create_with_a_runtime_binary_that_does_not_exist_names_the_binary()
    {
        OursOnly("the message format is ours");
        await using var shim = await ServingShimAsync();
        string bundle = await HandMadeBundleAsync("norunc", c => WithArgs(c, "norunc", "sleep", "300"));

        var (code, message) = await shim.StatusOfAsync(shim.TaskApi, "Create",
            new CreateTaskRequest { Id = "norunc", Bundle = bundle, Options = TypeUrls.Pack(new Containerd.Runc.V1.Options { BinaryName = "/nonexistent/runc" }) },
            CreateTaskResponse.Parser, Ct);
        Log($"missing runtime binary: {code}: {message}");

        Assert.Equal(StatusCode.FailedPrecondition, code);   // as a runtime binary not found on PATH
        Assert.Equal("runc create failed: cannot execute runtime binary /nonexistent/runc: No such file or directory (ENOENT)", message);
        AssertNothingLeftOf("norunc", bundle);
        await AssertStillServingAsync(shim);

        // the id is free again: with the default runtime binary the same request creates the container
        var created = await shim.CallAsync("Create", new CreateTaskRequest { Id = "norunc", Bundle = bundle }, CreateTaskResponse.Parser, Ct);
        Assert.True(created.Pid > 0);
        await shim.CallAsync("Delete", new DeleteRequest { Id = "norunc" }, DeleteResponse.Parser, Ct);
        AssertNothingLeftOf("norunc", bundle);
    }
}
