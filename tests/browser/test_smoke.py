def test_admin_login_page_renders_in_chromium(page, live_server):
    page.goto("/admin/login/")
    assert page.locator("input[name=username]").is_visible()
