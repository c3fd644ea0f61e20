using Keystone.Scripting;

namespace Keystone.Tests.Scripting;

public class LuaSmokeTests
{
    [Fact]
    public void Handler_reads_request_and_answers()
    {
        var h = ScriptHarness.Create("""
            function handle(req)
              return { status = 201, headers = { ["x-id"] = req.params.id }, body = req.method .. " " .. req.path .. " " .. req.query.x .. " " .. req.params.rest }
            end
            """);
        var r = h.Run();
        Assert.Equal(ScriptVerdict.Answered, r.Verdict);
        Assert.Equal(201, r.Status);
        Assert.Equal("7", r.ResponseHeader("x-id"));
        Assert.Equal("GET /items/7/a/b 1 a/b", r.Body);
    }

    [Fact]
    public void Budget_stops_an_endless_loop()
    {
        var h = ScriptHarness.Create("function on_request(req) while true do end end", budget: TimeSpan.FromMilliseconds(1));
        var r = h.Run();
        Assert.Equal(ScriptVerdict.Failed, r.Verdict);
        Assert.Contains("time budget", r.Failure);
        Assert.True(r.Elapsed < TimeSpan.FromMilliseconds(50), r.Elapsed.ToString());
    }
}
