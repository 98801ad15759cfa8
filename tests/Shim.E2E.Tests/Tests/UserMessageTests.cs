using System.Text.RegularExpressions;

namespace Shim.E2E.Tests;

/// <summary>
/// What a user of ctr reads when a request fails (issue 19): the operation, the object (container,
/// path, binary) and the reason in words, from the published NativeAOT binary, whose runtime
/// exception texts are compiled in: never a resource key such as IO_FileNotFound_FileName.
/// </summary>
public sealed partial class UserMessageTests : E2ETest
{
    [GeneratedRegex(@"\b[A-Z][a-z]+_[A-Za-z_]+\b")]
    private static partial Regex ResourceKey();

    /// <summary>ctr failed, and what it printed says <paramref name="parts"/> and holds no resource key.</summary>
    private static string AssertFailedSaying(CommandResult r, params string[] parts)
    {
        Log(r.Describe());
        Assert.True(r.ExitCode != 0, r.Describe());
        string said = r.Stderr + r.Stdout;
        foreach (string part in parts)
        {
            Assert.True(said.Contains(part, StringComparison.Ordinal), $"\"{part}\" missing from: {said}");
        }
        Assert.DoesNotMatch(ResourceKey(), said);
        return said;
    }

    /// <summary><c>ctr run --rm</c> through the runtime under test of <paramref name="rootfs"/>, with extra ctr flags before it.</summary>
    private string[] CtrRunArgs(string id, string rootfs, string[] flags, params string[] command) =>
    [
        "run", "--rm", "--fifo-dir", Ctrd.FifoDir, "--runtime", Runtime, .. flags,
        "--rootfs", "--env", "PATH=/bin", rootfs, id, .. command,
    ];

    [Fact]
    public async Task A_rootfs_that_does_not_exist_fails_create_naming_runc_the_path_and_the_reason()
    {
        OursOnly("the message format is ours");
        string rootfs = Path.Combine(TempDir("rcs-msg-"), "no-rootfs");

        var r = await CtrAsync(CtrRunArgs("norootfs", rootfs, [], "true"));

        AssertFailedSaying(r, "runc create failed: ", rootfs, "no such file or directory");
    }

    [Fact]
    public async Task An_exec_whose_cwd_does_not_exist_fails_naming_runc_exec_the_cwd_and_the_reason()
    {
        OursOnly("the message format is ours");
        (await CtrAsync(RunArgs("cwd1", detach: true, "sleep", "300"))).EnsureSuccess();

        var r = await CtrAsync("task", "exec", "--fifo-dir", Ctrd.FifoDir, "--exec-id", "e1", "--cwd", "/no/such/dir", "cwd1", "true");

        string said = AssertFailedSaying(r, "runc exec failed: ", "/no/such/dir", "no such file or directory");
        Assert.DoesNotContain("exec failed: exec failed", said, StringComparison.Ordinal);   // runc's own prefix said once
        Assert.Contains("RUNNING", (await CtrAsync("task", "ls")).EnsureSuccess().Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_runtime_config_path_that_is_a_directory_fails_naming_the_file_and_why()
    {
        OursOnly("the message format is ours");
        string dir = TempDir("rcs-msg-config-");

        var r = await CtrAsync(CtrRunArgs("confdir", RootfsDir, ["--runtime-config-path", dir], "true"));

        AssertFailedSaying(r, $"reading runtime options file {dir} failed: not a regular file");
    }

    [Fact]
    public async Task A_runtime_binary_that_does_not_exist_is_named_with_its_path_and_the_errno()
    {
        OursOnly("the message format is ours");
        // ctr passes its runc flags to io.containerd.runc.v2 only; for other runtimes the options come from a file
        string config = Path.Combine(TempDir("rcs-msg-config-"), "options.toml");
        await File.WriteAllTextAsync(config, "BinaryName = \"/nonexistent/crun\"\n", Ct);

        var r = await CtrAsync(CtrRunArgs("nocrun", RootfsDir, ["--runtime-config-path", config], "true"));

        AssertFailedSaying(r, "crun create failed: cannot execute runtime binary /nonexistent/crun: No such file or directory (ENOENT)");
    }

    [Fact]
    public async Task A_crun_failure_is_told_as_cruns_with_cruns_own_words()
    {
        OursOnly("the message format is ours");
        string crun = Prereqs.RequireCrunOrSkip();
        string config = Path.Combine(TempDir("rcs-msg-config-"), "options.toml");
        await File.WriteAllTextAsync(config, $"BinaryName = \"{crun}\"\n", Ct);
        string rootfs = Path.Combine(TempDir("rcs-msg-"), "no-rootfs");

        var r = await CtrAsync(CtrRunArgs("crunfail", rootfs, ["--runtime-config-path", config], "true"));

        // crun's text comes from its JSON log ({"msg":...,"level":"error",...}) or its stderr
        string said = AssertFailedSaying(r, "crun create failed: ");
        Assert.DoesNotContain("runc", said, StringComparison.Ordinal);
        Assert.DoesNotContain("exit status", said, StringComparison.Ordinal);   // crun's words, not a bare exit code
    }
}
