//! The Cloud Images v2 API, driven in process, each test on SQLite and on PostgreSQL.
//! Where we answer differently from upstream Glance on purpose, the test says so.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::{assert_error, bytes, TestApp};
use md5::Md5;
use serde_json::{json, Value};

on_both_engines!(
    versions_and_errors,
    authentication_and_roles,
    create_show_and_fields,
    create_refusals,
    list_filters_sort_and_pages,
    patch_rules,
    concurrent_patches_lose_nothing,
    delete_and_protection,
    tags,
    concurrent_tag_changes_lose_nothing,
    a_list_shows_every_change_at_once,
    sharing,
    image_data,
    upload_refusals_leave_image_queued,
    interrupted_upload_leaves_nothing,
    downloads_check_each_segment,
    deactivate_reactivate,
    uploads_are_inspected,
    restart_resets_uploads_in_flight,
    schemas,
    database_down_is_503,
);

async fn versions_and_errors(app: TestApp) {
    let (s, _, v) = app.call("GET", "/", "", None).await;
    assert_eq!(s, StatusCode::MULTIPLE_CHOICES);
    assert!(v["versions"]
        .as_array()
        .unwrap()
        .iter()
        .any(|x| x["status"] == "CURRENT"));
    let (s, _, _) = app.call("GET", "/versions", "", None).await;
    assert_eq!(s, StatusCode::OK);
    // 405 carries Allow and a JSON body.
    let (s, h, v) = app.call("DELETE", "/v2/images", "admin-a", None).await;
    assert_error(s, &v, StatusCode::METHOD_NOT_ALLOWED);
    let allow = h.get("allow").unwrap().to_str().unwrap().to_string();
    assert!(allow.contains("GET") && allow.contains("POST"), "{allow}");
    // Unknown path: JSON 404, even when the client asks for XML.
    let req = Request::builder()
        .uri("/v2/nothing")
        .header("accept", "application/xml")
        .header("x-auth-token", "admin-a")
        .body(Body::empty())
        .unwrap();
    let (s, h, b) = app.send(req).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(h["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    let v: Value = serde_json::from_slice(&b).unwrap();
    assert_eq!(v["code"], 404);
    // An id that is not a UUID cannot exist: 404, not 500.
    let (s, v) = app.get("/v2/images/not-a-uuid", "admin-a").await;
    assert_error(s, &v, StatusCode::NOT_FOUND);
    // Every response carries a request id.
    let (_, h, _) = app.call("GET", "/v2/images", "admin-a", None).await;
    assert!(h.contains_key("x-request-id"));
}

async fn authentication_and_roles(app: TestApp) {
    let (s, v) = app.get("/v2/images", "").await;
    assert_error(s, &v, StatusCode::UNAUTHORIZED);
    let (s, v) = app.get("/v2/images", "no-such-token").await;
    assert_error(s, &v, StatusCode::UNAUTHORIZED);
    // A token without a Cloud Images role reads nothing.
    let (s, v) = app.get("/v2/images", "member-a").await;
    assert_error(s, &v, StatusCode::FORBIDDEN);
    // Observers read, never write.
    let (s, _) = app.get("/v2/images", "observer-a").await;
    assert_eq!(s, StatusCode::OK);
    let (s, v) = app
        .post("/v2/images", "observer-a", json!({"name": "x"}))
        .await;
    assert_error(s, &v, StatusCode::FORBIDDEN);
    // Creators create and rename, but set no properties and delete nothing.
    let id = app.create("creator-a", json!({"name": "c"})).await;
    let (s, _) = app
        .patch(
            &format!("/v2/images/{id}"),
            "creator-a",
            json!([{"op": "replace", "path": "/name", "value": "c2"}]),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, v) = app
        .patch(
            &format!("/v2/images/{id}"),
            "creator-a",
            json!([{"op": "add", "path": "/os_version", "value": "1"}]),
        )
        .await;
    assert_error(s, &v, StatusCode::FORBIDDEN);
    let (s, _, v) = app
        .call("DELETE", &format!("/v2/images/{id}"), "creator-a", None)
        .await;
    assert_error(s, &v, StatusCode::FORBIDDEN);
    let (s, _, _) = app
        .call("DELETE", &format!("/v2/images/{id}"), "admin-a", None)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
}

async fn create_show_and_fields(app: TestApp) {
    let (s, h, v) = app
        .call(
            "POST",
            "/v2/images",
            "admin-a",
            Some((
                "application/json",
                json!({"name": "deb", "disk_format": "vhd", "container_format": "bare",
                       "os_distro": "debian", "tags": ["b", "a"], "min_ram": 512})
                .to_string()
                .into_bytes(),
            )),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    assert_eq!(h["location"], format!("/v2/images/{id}").as_str());
    assert_eq!(v["status"], "queued");
    // Cloud Images: private unless shared (upstream Glance defaults to `shared`).
    assert_eq!(v["visibility"], "private");
    assert_eq!(v["owner"], "proj-a");
    assert_eq!(v["protected"], false);
    assert_eq!(v["tags"], json!(["a", "b"]));
    assert_eq!(v["os_distro"], "debian");
    assert_eq!(v["min_ram"], 512);
    assert_eq!(v["self"], format!("/v2/images/{id}"));
    assert_eq!(v["file"], format!("/v2/images/{id}/file"));
    assert_eq!(v["schema"], "/v2/schemas/image");
    assert!(v["size"].is_null() && v["checksum"].is_null());
    let (s, got) = app.get(&format!("/v2/images/{id}"), "observer-a").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(got, v);
    // Another project cannot see a private image: 404, not 403.
    let (s, v) = app.get(&format!("/v2/images/{id}"), "admin-b").await;
    assert_error(s, &v, StatusCode::NOT_FOUND);
    // A chosen id is kept; a second image with it is a conflict.
    let chosen = "0b4b1b34-4c4c-4e7e-9d73-7f3c3c1e0001";
    assert_eq!(app.create("admin-a", json!({"id": chosen})).await, chosen);
    let (s, v) = app
        .post("/v2/images", "admin-a", json!({"id": chosen}))
        .await;
    assert_error(s, &v, StatusCode::CONFLICT);
}

async fn create_refusals(app: TestApp) {
    let cases = [
        (json!({"status": "active"}), StatusCode::FORBIDDEN, "status"),
        (json!({"owner": "proj-b"}), StatusCode::FORBIDDEN, "owner"),
        (json!({"size": 5}), StatusCode::FORBIDDEN, "size"),
        (
            json!({"com.rackspace__1__options": "1"}),
            StatusCode::FORBIDDEN,
            "com.rackspace__1__options",
        ),
        (
            json!({"os_distro": "Ubuntu"}),
            StatusCode::BAD_REQUEST,
            "ubuntu",
        ),
        (
            json!({"disk_format": "qcow3"}),
            StatusCode::BAD_REQUEST,
            "disk_format",
        ),
        (
            json!({"visibility": "everyone"}),
            StatusCode::BAD_REQUEST,
            "visibility",
        ),
        (
            json!({"visibility": "public"}),
            StatusCode::FORBIDDEN,
            "public",
        ),
        (
            json!({"min_disk": "big"}),
            StatusCode::BAD_REQUEST,
            "min_disk",
        ),
        (
            json!({"protected": "yes"}),
            StatusCode::BAD_REQUEST,
            "protected",
        ),
        (json!({"custom": 5}), StatusCode::BAD_REQUEST, "custom"),
        (json!({"id": "not-a-uuid"}), StatusCode::BAD_REQUEST, "UUID"),
        (json!({"tags": "a"}), StatusCode::BAD_REQUEST, "tags"),
        (json!(["a"]), StatusCode::BAD_REQUEST, "object"),
    ];
    for (body, want, mention) in cases {
        let (s, v) = app.post("/v2/images", "admin-a", body.clone()).await;
        assert_error(s, &v, want);
        assert!(
            v["message"].as_str().unwrap().contains(mention),
            "{body}: {v}"
        );
    }
    let (s, _, v) = app
        .call(
            "POST",
            "/v2/images",
            "admin-a",
            Some(("application/json", b"{\"name\": ".to_vec())),
        )
        .await;
    assert_error(s, &v, StatusCode::BAD_REQUEST);
    let (s, _, v) = app
        .call(
            "POST",
            "/v2/images",
            "admin-a",
            Some(("text/xml", b"<image/>".to_vec())),
        )
        .await;
    assert_error(s, &v, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let huge = json!({"name": "x".repeat(2 << 20)})
        .to_string()
        .into_bytes();
    let (s, _, v) = app
        .call(
            "POST",
            "/v2/images",
            "admin-a",
            Some(("application/json", huge)),
        )
        .await;
    assert_error(s, &v, StatusCode::PAYLOAD_TOO_LARGE);
    // Nothing was created by any of these.
    let (_, v) = app.get("/v2/images", "admin-a").await;
    assert_eq!(v["images"].as_array().unwrap().len(), 0, "{v}");
}

async fn list_filters_sort_and_pages(app: TestApp) {
    let mut ids = Vec::new();
    for n in 0..7 {
        let mut body = json!({"name": format!("img-{n}"), "os_version": if n % 2 == 0 { "even" } else { "odd" }});
        if n < 3 {
            body["tags"] = json!(["first", format!("t{n}")]);
        }
        ids.push(app.create("admin-a", body).await);
    }
    app.create("admin-b", json!({"name": "img-b"})).await;
    let names = |v: &Value| -> Vec<String> {
        v["images"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["name"].as_str().unwrap().to_string())
            .collect()
    };
    // Default order: newest first; only the caller's images.
    let (s, v) = app.get("/v2/images", "admin-a").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        names(&v),
        (0..7).rev().map(|n| format!("img-{n}")).collect::<Vec<_>>()
    );
    assert_eq!(v["first"], "/v2/images");
    assert_eq!(v["schema"], "/v2/schemas/images");
    assert!(v.get("next").is_none(), "no next on a partial page");
    let (_, v) = app.get("/v2/images?name=img-3", "admin-a").await;
    assert_eq!(names(&v), vec!["img-3"]);
    let (_, v) = app.get("/v2/images?tag=first&tag=t1", "admin-a").await;
    assert_eq!(names(&v), vec!["img-1"]);
    let (_, v) = app
        .get("/v2/images?os_version=odd&sort=name:asc", "admin-a")
        .await;
    assert_eq!(names(&v), vec!["img-1", "img-3", "img-5"]);
    let (_, v) = app
        .get(
            "/v2/images?sort_key=name&sort_dir=asc&status=queued",
            "admin-a",
        )
        .await;
    assert_eq!(names(&v)[0], "img-0");
    // Pages of 3 by name, following `next`, give every image once in order.
    let mut seen = Vec::new();
    let mut url = "/v2/images?limit=3&sort=name:asc".to_string();
    loop {
        let (s, v) = app.get(&url, "admin-a").await;
        assert_eq!(s, StatusCode::OK, "{v}");
        seen.extend(names(&v));
        match v.get("next").and_then(Value::as_str) {
            Some(n) => url = n.to_string(),
            None => break,
        }
    }
    assert_eq!(seen, (0..7).map(|n| format!("img-{n}")).collect::<Vec<_>>());
    // Descending pages too.
    let (_, v) = app
        .get(
            &format!("/v2/images?sort=name:desc&marker={}", ids[4]),
            "admin-a",
        )
        .await;
    assert_eq!(names(&v), vec!["img-3", "img-2", "img-1", "img-0"]);
    for bad in [
        "/v2/images?marker=0b4b1b34-4c4c-4e7e-9d73-7f3c3c1effff",
        "/v2/images?visibility=everyone",
        "/v2/images?sort_key=nope",
        "/v2/images?limit=x",
        "/v2/images?member_status=maybe",
        "/v2/images?size_min=big",
    ] {
        let (s, v) = app.get(bad, "admin-a").await;
        assert_error(s, &v, StatusCode::BAD_REQUEST);
    }
    // Another project's image is not a valid marker either.
    let (_, vb) = app.get("/v2/images", "admin-b").await;
    let bid = vb["images"][0]["id"].as_str().unwrap().to_string();
    let (s, v) = app
        .get(&format!("/v2/images?marker={bid}"), "admin-a")
        .await;
    assert_error(s, &v, StatusCode::BAD_REQUEST);
    // A filter value with SQL in it is only a value.
    let (s, v) = app
        .get("/v2/images?name=x%27%20OR%20%271%27%3D%271", "admin-a")
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(names(&v).len(), 0);
}

async fn patch_rules(app: TestApp) {
    let id = app
        .create("admin-a", json!({"name": "p", "os_version": "1"}))
        .await;
    let uri = format!("/v2/images/{id}");
    let (s, h, v) = app
        .call(
            "PATCH",
            &uri,
            "admin-a",
            Some(("application/json", b"[]".to_vec())),
        )
        .await;
    assert_error(s, &v, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(h["accept-patch"]
        .to_str()
        .unwrap()
        .contains("openstack-images-v2.1-json-patch"));
    let (s, v) = app
        .patch(
            &uri,
            "admin-a",
            json!([
                {"op": "replace", "path": "/name", "value": "renamed"},
                {"op": "add", "path": "/os_distro", "value": "ubuntu"},
                {"op": "remove", "path": "/os_version"},
                {"op": "add", "path": "/tags", "value": ["x"]}
            ]),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["name"], "renamed");
    assert_eq!(v["os_distro"], "ubuntu");
    assert!(v.get("os_version").is_none());
    assert_eq!(v["tags"], json!(["x"]));
    let (_, stored) = app.get(&uri, "admin-a").await;
    assert_eq!(stored, v);
    let cases = [
        (
            json!([{"op": "remove", "path": "/os_version"}]),
            StatusCode::CONFLICT,
        ),
        (
            json!([{"op": "replace", "path": "/nothing", "value": "1"}]),
            StatusCode::CONFLICT,
        ),
        (
            json!([{"op": "replace", "path": "/status", "value": "active"}]),
            StatusCode::FORBIDDEN,
        ),
        (
            json!([{"op": "replace", "path": "/id", "value": "x"}]),
            StatusCode::FORBIDDEN,
        ),
        (
            json!([{"op": "add", "path": "/com.rackspace__1__build", "value": "x"}]),
            StatusCode::FORBIDDEN,
        ),
        (
            json!([{"op": "add", "path": "/a/b", "value": "x"}]),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!([{"op": "move", "path": "/name", "from": "/x"}]),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!([{"op": "add", "path": "/os_distro", "value": "DOS"}]),
            StatusCode::BAD_REQUEST,
        ),
        (json!({"op": "add"}), StatusCode::BAD_REQUEST),
        (
            json!([{"op": "replace", "path": "/visibility", "value": "public"}]),
            StatusCode::FORBIDDEN,
        ),
    ];
    for (body, want) in cases {
        let (s, v) = app.patch(&uri, "admin-a", body.clone()).await;
        assert_error(s, &v, want);
    }
    // A refused PATCH changed nothing, even when its first operations were fine.
    let (s, _) = app
        .patch(&uri, "admin-a", json!([{"op": "replace", "path": "/name", "value": "lost"}, {"op": "replace", "path": "/status", "value": "active"}]))
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (_, again) = app.get(&uri, "admin-a").await;
    assert_eq!(again["name"], "renamed");
    // The deprecated v2.0 media type.
    let (s, _, v) = app
        .call(
            "PATCH",
            &uri,
            "admin-a",
            Some((
                "application/openstack-images-v2.0-json-patch",
                json!([{"replace": "/name", "value": "v20"}])
                    .to_string()
                    .into_bytes(),
            )),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["name"], "v20");
    // Another project: cannot see it, 404.
    let (s, v) = app
        .patch(
            &uri,
            "admin-b",
            json!([{"op": "replace", "path": "/name", "value": "x"}]),
        )
        .await;
    assert_error(s, &v, StatusCode::NOT_FOUND);
}

async fn concurrent_patches_lose_nothing(app: TestApp) {
    let id = app.create("admin-a", json!({"name": "race"})).await;
    let app = std::sync::Arc::new(app);
    let mut tasks = Vec::new();
    for n in 0..16 {
        let app = app.clone();
        let uri = format!("/v2/images/{id}");
        tasks.push(tokio::spawn(async move {
            app.patch(
                &uri,
                "admin-a",
                json!([{"op": "add", "path": format!("/k{n}"), "value": format!("{n}")}]),
            )
            .await
            .0
        }));
    }
    let mut ok = 0;
    for t in tasks {
        let s = t.await.unwrap();
        assert!(s == StatusCode::OK || s == StatusCode::CONFLICT, "{s}");
        ok += (s == StatusCode::OK) as usize;
    }
    let (_, v) = app.get(&format!("/v2/images/{id}"), "admin-a").await;
    let present = (0..16).filter(|n| v.get(format!("k{n}")).is_some()).count();
    // Every PATCH that answered 200 is in the image: none was overwritten by another.
    assert_eq!(present, ok, "{v}");
    assert!(ok >= 1);
}

async fn delete_and_protection(app: TestApp) {
    let id = app
        .create("admin-a", json!({"name": "keep", "protected": true, "disk_format": "raw", "container_format": "bare"}))
        .await;
    let uri = format!("/v2/images/{id}");
    let (s, _, v) = app.call("DELETE", &uri, "admin-a", None).await;
    assert_error(s, &v, StatusCode::FORBIDDEN);
    let (s, _, v) = app.call("DELETE", &uri, "admin-b", None).await;
    assert_error(s, &v, StatusCode::NOT_FOUND);
    app.patch(
        &uri,
        "admin-a",
        json!([{"op": "replace", "path": "/protected", "value": false}]),
    )
    .await;
    app.upload(&id, "admin-a", bytes(1000, 1)).await;
    let stored: Vec<_> = std::fs::read_dir(app.store_dir()).unwrap().collect();
    assert_eq!(stored.len(), 1, "the data is in the store");
    let (s, _, _) = app.call("DELETE", &uri, "admin-a", None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, v) = app.get(&uri, "admin-a").await;
    assert_error(s, &v, StatusCode::NOT_FOUND);
    assert_eq!(
        std::fs::read_dir(app.store_dir()).unwrap().count(),
        0,
        "data removed with the image"
    );
    let (s, _, v) = app.call("DELETE", &uri, "admin-a", None).await;
    assert_error(s, &v, StatusCode::NOT_FOUND);
}

async fn tags(app: TestApp) {
    let id = app.create("admin-a", json!({})).await;
    let tag = |t: &str| format!("/v2/images/{id}/tags/{}", t);
    for _ in 0..2 {
        let (s, _, _) = app.call("PUT", &tag("blue%20sky"), "creator-a", None).await;
        assert_eq!(s, StatusCode::NO_CONTENT);
    }
    let uni = "é".repeat(255);
    let (s, _, _) = app
        .call("PUT", &tag(&urlencode(&uni)), "admin-a", None)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (_, v) = app.get(&format!("/v2/images/{id}"), "admin-a").await;
    assert_eq!(v["tags"], json!(["blue sky", uni]));
    let (s, _, v) = app
        .call("PUT", &tag(&urlencode(&"é".repeat(256))), "admin-a", None)
        .await;
    assert_error(s, &v, StatusCode::BAD_REQUEST);
    let (s, _, v) = app.call("PUT", &tag("x"), "observer-a", None).await;
    assert_error(s, &v, StatusCode::FORBIDDEN);
    let (s, _, v) = app.call("PUT", &tag("x"), "admin-b", None).await;
    assert_error(s, &v, StatusCode::NOT_FOUND);
    let (s, _, _) = app
        .call("DELETE", &tag("blue%20sky"), "admin-a", None)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _, v) = app
        .call("DELETE", &tag("blue%20sky"), "admin-a", None)
        .await;
    assert_error(s, &v, StatusCode::NOT_FOUND);
    // Quota: 128 tags, the next one is 413.
    for n in 1..128 {
        let (s, _, _) = app
            .call("PUT", &tag(&format!("q{n}")), "admin-a", None)
            .await;
        assert_eq!(s, StatusCode::NO_CONTENT, "tag {n}");
    }
    let (s, _, v) = app.call("PUT", &tag("one-too-many"), "admin-a", None).await;
    assert_error(s, &v, StatusCode::PAYLOAD_TOO_LARGE);
    // Re-adding an existing tag at the quota is still fine (idempotent).
    let (s, _, _) = app.call("PUT", &tag("q5"), "admin-a", None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
}

/// A list page's documents are rendered once per version of a row and kept (db::docs):
/// after every kind of change, and after the image is deleted and made again under the
/// same id, the listed document equals what `GET /v2/images/{id}` (never kept) shows.
async fn a_list_shows_every_change_at_once(app: TestApp) {
    let id = "0b7e4a52-3c1f-4f57-9d0e-2a1f43c9e001";
    let mut body =
        json!({"id": id, "name": "kept", "disk_format": "raw", "container_format": "bare"});
    let (s, v) = app.post("/v2/images", "admin-a", body.clone()).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    listed_as_shown(&app, id).await;
    let patch = json!([{"op": "add", "path": "/os_version", "value": "24.04"}]);
    let (s, v) = app
        .patch(&format!("/v2/images/{id}"), "admin-a", patch)
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(listed_as_shown(&app, id).await["os_version"], "24.04");
    let (s, _, _) = app
        .call(
            "PUT",
            &format!("/v2/images/{id}/tags/fresh"),
            "admin-a",
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_eq!(listed_as_shown(&app, id).await["tags"], json!(["fresh"]));
    let (s, v) = app.upload(id, "admin-a", bytes(4096, 9)).await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{v}");
    let shown = listed_as_shown(&app, id).await;
    assert_eq!(
        (shown["status"].as_str(), shown["size"].as_i64()),
        (Some("active"), Some(4096))
    );
    let (s, _, _) = app
        .call(
            "POST",
            &format!("/v2/images/{id}/actions/deactivate"),
            "admin-a",
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_eq!(listed_as_shown(&app, id).await["status"], "deactivated");
    let (s, _, _) = app
        .call(
            "DELETE",
            &format!("/v2/images/{id}/tags/fresh"),
            "admin-a",
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_eq!(listed_as_shown(&app, id).await["tags"], json!([]));
    let (s, _, _) = app
        .call("DELETE", &format!("/v2/images/{id}"), "admin-a", None)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    // Made again under the same id: its row starts again at the first version.
    let (s, v) = app.post("/v2/images", "admin-a", body.clone()).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let shown = listed_as_shown(&app, id).await;
    assert_eq!(
        (shown["status"].as_str(), shown["tags"].clone()),
        (Some("queued"), json!([]))
    );
    assert!(shown.get("os_version").is_none(), "{shown}");
    // Once more at that first version, now with another value.
    let (s, _, _) = app
        .call("DELETE", &format!("/v2/images/{id}"), "admin-a", None)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    body["min_disk"] = json!(7);
    let (s, v) = app.post("/v2/images", "admin-a", body).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(listed_as_shown(&app, id).await["min_disk"], 7);
}

/// The one image named `kept`, as a list page has it, checked equal to what its own
/// `GET` shows.
async fn listed_as_shown(app: &TestApp, id: &str) -> Value {
    let (s, page) = app.get("/v2/images?name=kept", "admin-a").await;
    assert_eq!(s, StatusCode::OK, "{page}");
    let (s, shown) = app.get(&format!("/v2/images/{id}"), "admin-a").await;
    assert_eq!(s, StatusCode::OK, "{shown}");
    assert_eq!(page["images"].as_array().map(Vec::len), Some(1), "{page}");
    assert_eq!(page["images"][0], shown);
    shown
}

/// The tags an image shows (its row's copy) and the tags its `tag=` filter finds (the
/// indexed child rows) are the same set after concurrent adds and removes.
async fn concurrent_tag_changes_lose_nothing(app: TestApp) {
    let id = app.create("admin-a", json!({"name": "tagged"})).await;
    let app = std::sync::Arc::new(app);
    let run = |method: &'static str, tags: Vec<usize>| {
        let handles: Vec<_> = tags
            .into_iter()
            .map(|n| {
                let app = app.clone();
                let uri = format!("/v2/images/{id}/tags/t{n}");
                tokio::spawn(async move { app.call(method, &uri, "admin-a", None).await.0 })
            })
            .collect();
        async move {
            for h in handles {
                assert_eq!(h.await.unwrap(), StatusCode::NO_CONTENT, "{method}");
            }
        }
    };
    run("PUT", (0..24).collect()).await;
    run("DELETE", (0..24).filter(|n| n % 3 == 0).collect()).await;
    let want: Vec<String> = {
        let mut v: Vec<String> = (0..24)
            .filter(|n| n % 3 != 0)
            .map(|n| format!("t{n}"))
            .collect();
        v.sort();
        v
    };
    let (_, v) = app.get(&format!("/v2/images/{id}"), "admin-a").await;
    let mut shown: Vec<String> = serde_json::from_value(v["tags"].clone()).unwrap();
    shown.sort();
    assert_eq!(shown, want, "{v}");
    for n in 0..24 {
        let (_, l) = app.get(&format!("/v2/images?tag=t{n}"), "admin-a").await;
        let found = l["images"].as_array().unwrap().len();
        assert_eq!(found, (n % 3 != 0) as usize, "tag=t{n}: {l}");
        if found == 1 {
            assert_eq!(
                l["images"][0]["tags"],
                json!(want),
                "the list shows the row's copy"
            );
        }
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

async fn sharing(app: TestApp) {
    let id = app.create("admin-a", json!({"name": "gift"})).await;
    let img = format!("/v2/images/{id}");
    let members = format!("{img}/members");
    let names = |v: &Value| -> Vec<String> {
        v["images"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["id"].as_str().unwrap().to_string())
            .collect()
    };
    // Only the owner shares; the consumer cannot add members.
    let (s, v) = app
        .post(&members, "admin-b", json!({"member": "proj-c"}))
        .await;
    assert_error(s, &v, StatusCode::NOT_FOUND);
    let (s, v) = app
        .post(&members, "creator-a", json!({"member": "proj-b"}))
        .await;
    assert_error(s, &v, StatusCode::FORBIDDEN);
    let (s, m) = app
        .post(&members, "admin-a", json!({"member": "proj-b"}))
        .await;
    assert_eq!(s, StatusCode::OK, "{m}");
    assert_eq!(m["status"], "pending");
    assert_eq!(m["member_id"], "proj-b");
    assert_eq!(m["image_id"], id.as_str());
    assert_eq!(m["schema"], "/v2/schemas/member");
    let (s, v) = app
        .post(&members, "admin-a", json!({"member": "proj-b"}))
        .await;
    assert_error(s, &v, StatusCode::CONFLICT);
    let (s, v) = app
        .post(&members, "admin-a", json!({"member": "proj-c", "extra": 1}))
        .await;
    assert_error(s, &v, StatusCode::BAD_REQUEST);
    // Cloud Images: sharing a private image makes it shared (upstream Glance answers 403
    // until the owner sets visibility to shared).
    let (_, v) = app.get(&img, "admin-a").await;
    assert_eq!(v["visibility"], "shared");
    // Not in the consumer's list until accepted; visible with member_status=pending.
    let (_, v) = app.get("/v2/images", "admin-b").await;
    assert!(!names(&v).contains(&id));
    let (_, v) = app.get("/v2/images?member_status=pending", "admin-b").await;
    assert_eq!(names(&v), vec![id.clone()]);
    let (s, _) = app.get(&img, "observer-b").await;
    assert_eq!(s, StatusCode::OK, "a member sees the image by id");
    // The producer cannot answer for the consumer; the consumer answers for itself only.
    let (s, v) = app
        .put_json(
            &format!("{members}/proj-b"),
            "admin-a",
            json!({"status": "accepted"}),
        )
        .await;
    assert_error(s, &v, StatusCode::FORBIDDEN);
    let (s, v) = app
        .put_json(
            &format!("{members}/proj-b"),
            "admin-b",
            json!({"status": "maybe"}),
        )
        .await;
    assert_error(s, &v, StatusCode::BAD_REQUEST);
    let (s, v) = app
        .put_json(
            &format!("{members}/proj-b"),
            "observer-b",
            json!({"status": "accepted"}),
        )
        .await;
    assert_error(s, &v, StatusCode::FORBIDDEN);
    let (s, v) = app
        .put_json(
            &format!("{members}/proj-b"),
            "admin-b",
            json!({"status": "accepted"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "accepted");
    let (_, v) = app.get("/v2/images", "admin-b").await;
    assert_eq!(names(&v), vec![id.clone()]);
    let (_, v) = app.get("/v2/images?visibility=shared", "admin-b").await;
    assert_eq!(names(&v), vec![id.clone()]);
    // Changes its mind.
    app.put_json(
        &format!("{members}/proj-b"),
        "admin-b",
        json!({"status": "rejected"}),
    )
    .await;
    let (_, v) = app.get("/v2/images", "admin-b").await;
    assert!(names(&v).is_empty());
    let (_, v) = app
        .get("/v2/images?member_status=rejected", "admin-b")
        .await;
    assert_eq!(names(&v), vec![id.clone()]);
    app.put_json(
        &format!("{members}/proj-b"),
        "admin-b",
        json!({"status": "accepted"}),
    )
    .await;
    // Member lists: the owner sees all, a consumer only itself, a stranger nothing.
    app.post(&members, "admin-a", json!({"member": "proj-c"}))
        .await;
    let (_, v) = app.get(&members, "admin-a").await;
    assert_eq!(v["members"].as_array().unwrap().len(), 2);
    assert_eq!(v["schema"], "/v2/schemas/members");
    let (_, v) = app.get(&members, "admin-b").await;
    assert_eq!(v["members"].as_array().unwrap().len(), 1);
    assert_eq!(v["members"][0]["member_id"], "proj-b");
    let (s, _) = app.get(&format!("{members}/proj-b"), "admin-b").await;
    assert_eq!(s, StatusCode::OK);
    let (s, v) = app.get(&format!("{members}/proj-c"), "admin-b").await;
    assert_error(s, &v, StatusCode::NOT_FOUND);
    // A consumer cannot delete members or the image, or change it.
    let (s, _, v) = app
        .call("DELETE", &format!("{members}/proj-c"), "admin-b", None)
        .await;
    assert_error(s, &v, StatusCode::FORBIDDEN);
    let (s, _, v) = app.call("DELETE", &img, "admin-b", None).await;
    assert_error(s, &v, StatusCode::FORBIDDEN);
    let (s, v) = app
        .patch(
            &img,
            "admin-b",
            json!([{"op": "replace", "path": "/name", "value": "mine"}]),
        )
        .await;
    assert_error(s, &v, StatusCode::FORBIDDEN);
    // The producer removes the member: access ends at once.
    let (s, _, _) = app
        .call("DELETE", &format!("{members}/proj-b"), "admin-a", None)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, v) = app.get(&img, "admin-b").await;
    assert_error(s, &v, StatusCode::NOT_FOUND);
    let (_, v) = app.get("/v2/images?member_status=all", "admin-b").await;
    assert!(names(&v).is_empty());
    let (s, _, v) = app
        .call("DELETE", &format!("{members}/proj-b"), "admin-a", None)
        .await;
    assert_error(s, &v, StatusCode::NOT_FOUND);
}

async fn image_data(app: TestApp) {
    let id = app
        .create(
            "admin-a",
            json!({"name": "data", "disk_format": "raw", "container_format": "bare"}),
        )
        .await;
    let file = format!("/v2/images/{id}/file");
    // No data yet: 204.
    let (s, _, b) = app.raw("GET", &file, "admin-a", None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert!(b.is_empty());
    let (s, _, v) = app
        .call(
            "PUT",
            &file,
            "admin-a",
            Some(("application/json", b"{}".to_vec())),
        )
        .await;
    assert_error(s, &v, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let data = bytes(3 * 1024 * 1024 + 17, 7);
    let (s, v) = app.upload(&id, "creator-a", data.clone()).await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{v}");
    let (_, v) = app.get(&format!("/v2/images/{id}"), "admin-a").await;
    assert_eq!(v["status"], "active");
    assert_eq!(v["size"], data.len() as u64);
    assert_eq!(
        v["checksum"],
        hex::encode(<Md5 as md5::Digest>::digest(&data))
    );
    assert_eq!(v["os_hash_algo"], "sha512");
    assert_eq!(
        v["virtual_size"],
        data.len() as u64,
        "raw: the virtual size is the size"
    );
    use sha2::Digest as _;
    assert_eq!(v["os_hash_value"], hex::encode(sha2::Sha512::digest(&data)));
    let (s, h, b) = app.raw("GET", &file, "observer-a", None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(h["content-length"], data.len().to_string().as_str());
    assert_eq!(
        h["content-md5"],
        hex::encode(<Md5 as md5::Digest>::digest(&data)).as_str()
    );
    assert!(b == data, "downloaded bytes differ");
    // Ranges.
    let req = |range: &str| {
        Request::builder()
            .uri(&file)
            .header("x-auth-token", "admin-a")
            .header("range", range)
            .body(Body::empty())
            .unwrap()
    };
    let (s, h, b) = app.send(req("bytes=100-199")).await;
    assert_eq!(s, StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        h["content-range"],
        format!("bytes 100-199/{}", data.len()).as_str()
    );
    assert_eq!(b, data[100..200]);
    let (s, _, b) = app.send(req("bytes=-10")).await;
    assert_eq!(s, StatusCode::PARTIAL_CONTENT);
    assert_eq!(b, data[data.len() - 10..]);
    let (s, h, _) = app.send(req(&format!("bytes={}-", data.len()))).await;
    assert_eq!(s, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(
        h["content-range"],
        format!("bytes */{}", data.len()).as_str()
    );
    // Data once: a second upload is a conflict and changes nothing.
    let (s, v) = app.upload(&id, "admin-a", bytes(10, 1)).await;
    assert_error(s, &v, StatusCode::CONFLICT);
    let (_, _, b) = app.raw("GET", &file, "admin-a", None).await;
    assert!(b == data);
    // Another project cannot read it.
    let (s, _, _) = app.raw("GET", &file, "admin-b", None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // An empty image is fine too.
    let empty = app.create("admin-a", raw_image()).await;
    let (s, v) = app.upload(&empty, "admin-a", Vec::new()).await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{v}");
    let (_, v) = app.get(&format!("/v2/images/{empty}"), "admin-a").await;
    assert_eq!(v["size"], 0);
    assert_eq!(v["status"], "active");
}

fn store_objects(app: &TestApp) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(app.store_dir())
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.retain(|n| !n.starts_with('.'));
    names.sort();
    names
}

const RAW: &str = r#"{"disk_format": "raw", "container_format": "bare"}"#;

fn raw_image() -> Value {
    serde_json::from_str(RAW).unwrap()
}

async fn upload_refusals_leave_image_queued(app: TestApp) {
    let app = {
        let limits = cloudimg_api::Limits {
            max_image_size: 1 << 20,
            ..Default::default()
        };
        match TestApp::with_limits(app.engine, limits).await {
            Some(a) => a,
            None => return,
        }
    };
    // Glance's rule: no data before the formats are set.
    let bare = app.create("admin-a", json!({})).await;
    let (s, v) = app.upload(&bare, "admin-a", vec![1, 2, 3]).await;
    assert_error(s, &v, StatusCode::BAD_REQUEST);
    assert!(
        v["message"].as_str().unwrap().contains("disk_format"),
        "{v}"
    );
    let id = app.create("admin-a", raw_image()).await;
    // Declared too large: refused before reading.
    let (s, v) = app.upload(&id, "admin-a", vec![0; (1 << 20) + 1]).await;
    assert_error(s, &v, StatusCode::PAYLOAD_TOO_LARGE);
    // Too large without a Content-Length (chunked): refused while reading.
    let chunks: Vec<Result<bytes::Bytes, std::io::Error>> = (0..20)
        .map(|_| Ok(bytes::Bytes::from(vec![1u8; 100_000])))
        .collect();
    let req = Request::builder()
        .method("PUT")
        .uri(format!("/v2/images/{id}/file"))
        .header("x-auth-token", "admin-a")
        .header("content-type", "application/octet-stream")
        .body(Body::from_stream(futures_util::stream::iter(chunks)))
        .unwrap();
    let (s, _, b) = app.send(req).await;
    let v: Value = serde_json::from_slice(&b).unwrap();
    assert_error(s, &v, StatusCode::PAYLOAD_TOO_LARGE);
    let (_, v) = app.get(&format!("/v2/images/{id}"), "admin-a").await;
    assert_eq!(v["status"], "queued");
    assert!(v["size"].is_null());
    assert_eq!(store_objects(&app), Vec::<String>::new());
    // Observers and strangers cannot upload.
    let (s, v) = app.upload(&id, "observer-a", vec![1]).await;
    assert_error(s, &v, StatusCode::FORBIDDEN);
    let (s, v) = app.upload(&id, "admin-b", vec![1]).await;
    assert_error(s, &v, StatusCode::NOT_FOUND);
    // And after all that, a good upload still works.
    let (s, _) = app.upload(&id, "admin-a", vec![5; 1000]).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
}

async fn interrupted_upload_leaves_nothing(app: TestApp) {
    let id = app.create("admin-a", raw_image()).await;
    // The client sends 2 MiB, then the connection breaks.
    let mut chunks: Vec<Result<bytes::Bytes, std::io::Error>> = (0..32)
        .map(|n| Ok(bytes::Bytes::from(bytes(65536, n))))
        .collect();
    chunks.push(Err(std::io::Error::new(
        std::io::ErrorKind::ConnectionReset,
        "client went away",
    )));
    let req = Request::builder()
        .method("PUT")
        .uri(format!("/v2/images/{id}/file"))
        .header("x-auth-token", "admin-a")
        .header("content-type", "application/octet-stream")
        .body(Body::from_stream(futures_util::stream::iter(chunks)))
        .unwrap();
    let (s, _, _) = app.send(req).await;
    assert!(s.is_client_error(), "{s}");
    let (_, v) = app.get(&format!("/v2/images/{id}"), "admin-a").await;
    assert_eq!(v["status"], "queued", "never active with a short object");
    assert!(v["checksum"].is_null());
    assert_eq!(store_objects(&app), Vec::<String>::new());
    let (s, _, _) = app
        .raw("GET", &format!("/v2/images/{id}/file"), "admin-a", None)
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    // A retry succeeds.
    let (s, _) = app.upload(&id, "admin-a", bytes(1000, 3)).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
}

async fn downloads_check_each_segment(app: TestApp) {
    let app = {
        let limits = cloudimg_api::Limits {
            upload_segment_size: 1 << 20,
            ..Default::default()
        };
        match TestApp::with_limits(app.engine, limits).await {
            Some(a) => a,
            None => return,
        }
    };
    let id = app.create("admin-a", raw_image()).await;
    let data = bytes(3 * 1024 * 1024 + 5, 9);
    let (s, v) = app.upload(&id, "admin-a", data.clone()).await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{v}");
    let file = format!("/v2/images/{id}/file");
    let get = || async {
        let req = Request::builder()
            .uri(&file)
            .header("x-auth-token", "admin-a")
            .body(Body::empty())
            .unwrap();
        let resp = tower::ServiceExt::oneshot(app.router.clone(), req)
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        axum::body::to_bytes(resp.into_body(), usize::MAX).await
    };
    assert!(get().await.unwrap() == data, "downloaded bytes differ");
    // The third segment's bytes change on disk behind the store (same length): the
    // download stops with an error before that segment, never a whole body of other bytes.
    let seg = app
        .store_dir()
        .join(format!("{}-00003", store_objects(&app)[0]));
    assert_eq!(std::fs::metadata(&seg).unwrap().len(), 1 << 20, "{seg:?}");
    std::fs::write(&seg, vec![0xa5u8; 1 << 20]).unwrap();
    assert!(
        get().await.is_err(),
        "a segment whose MD5 differs was served"
    );
}

async fn deactivate_reactivate(app: TestApp) {
    let id = app.create("admin-a", raw_image()).await;
    let act = |a: &str| format!("/v2/images/{id}/actions/{a}");
    let (s, _, v) = app.call("POST", &act("deactivate"), "admin-a", None).await;
    assert_error(s, &v, StatusCode::FORBIDDEN); // queued: nothing to deactivate
    app.upload(&id, "admin-a", vec![1, 2, 3]).await;
    app.post(
        &format!("/v2/images/{id}/members"),
        "admin-a",
        json!({"member": "proj-b"}),
    )
    .await;
    app.put_json(
        &format!("/v2/images/{id}/members/proj-b"),
        "admin-b",
        json!({"status": "accepted"}),
    )
    .await;
    let (s, _, _) = app.call("POST", &act("deactivate"), "admin-a", None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (_, v) = app.get(&format!("/v2/images/{id}"), "admin-b").await;
    assert_eq!(v["status"], "deactivated");
    let (s, _, _) = app
        .raw("GET", &format!("/v2/images/{id}/file"), "admin-b", None)
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let (s, _, v) = app.call("POST", &act("reactivate"), "admin-b", None).await;
    assert_error(s, &v, StatusCode::FORBIDDEN);
    let (s, _, _) = app.call("POST", &act("reactivate"), "admin-a", None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (s, _, b) = app
        .raw("GET", &format!("/v2/images/{id}/file"), "admin-b", None)
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b, vec![1, 2, 3]);
}

async fn schemas(app: TestApp) {
    for name in ["image", "images", "member", "members", "task", "tasks"] {
        let (s, v) = app.get(&format!("/v2/schemas/{name}"), "observer-a").await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(v["name"], name);
    }
    let (s, v) = app.get("/v2/schemas/nope", "observer-a").await;
    assert_error(s, &v, StatusCode::NOT_FOUND);
}

async fn database_down_is_503(app: TestApp) {
    let id = app.create("admin-a", json!({"name": "before"})).await;
    app.st.db.close().await;
    let (s, v) = app.get(&format!("/v2/images/{id}"), "admin-a").await;
    assert_error(s, &v, StatusCode::SERVICE_UNAVAILABLE);
    let (s, v) = app
        .post("/v2/images", "admin-a", json!({"name": "during"}))
        .await;
    assert_error(s, &v, StatusCode::SERVICE_UNAVAILABLE);
    let (s, _) = app.get("/healthz", "").await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
}

/// Runs qemu-img with `args` in `dir`.
fn qemu_img(dir: &std::path::Path, args: &[&str]) {
    let st = std::process::Command::new("qemu-img")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "qemu-img {args:?}: {}",
        String::from_utf8_lossy(&st.stderr)
    );
}

/// The qemu-img-made dynamic fixture with `c` applied (the first BAT entry, at 0x600).
fn damaged(d: &std::path::Path, c: cloudimg_fixtures::Corruption) -> Vec<u8> {
    let p = d.join(format!("{c:?}.vhd"));
    std::fs::copy(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../fixtures/dynamic-qemu.vhd"
        ),
        &p,
    )
    .unwrap();
    let applied = cloudimg_fixtures::corrupt(&p, c).unwrap();
    assert_eq!(applied.offset, 0x600, "{c:?}");
    std::fs::read(p).unwrap()
}

async fn uploads_are_inspected(app: TestApp) {
    if !cloudimg_fixtures::env::require_tool("qemu-img") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    qemu_img(d, &["create", "-q", "-f", "qcow2", "plain.qcow2", "1M"]);
    // A backing file on the host: what CVE-2024-32498 used to read a host's files.
    qemu_img(
        d,
        &[
            "create",
            "-q",
            "-f",
            "qcow2",
            "-u",
            "-b",
            "/etc/hostname",
            "-F",
            "raw",
            "evil.qcow2",
            "1M",
        ],
    );
    qemu_img(d, &["create", "-q", "-f", "vpc", "disk.vhd", "4M"]);
    let read = |n: &str| std::fs::read(d.join(n)).unwrap();
    let leaf = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../fixtures/chain/leaf.vhd"
    ))
    .unwrap();
    let cases: Vec<(&str, Vec<u8>, &str, &str)> = vec![
        (
            "raw",
            read("evil.qcow2"),
            "/etc/hostname",
            "qcow2 with a host backing file as raw",
        ),
        (
            "qcow2",
            read("evil.qcow2"),
            "names other files",
            "qcow2 with a backing file as qcow2",
        ),
        ("vhd", read("plain.qcow2"), "QCOW2", "qcow2 as vhd"),
        ("raw", read("disk.vhd"), "VHD", "vhd as raw"),
        ("vhd", leaf, "parent", "differencing VHD"),
        (
            "vhd",
            damaged(d, cloudimg_fixtures::Corruption::BatEntryInMetadata),
            "bat at offset 0x600",
            "dynamic VHD with a block over its header",
        ),
        (
            "vhd",
            damaged(d, cloudimg_fixtures::Corruption::BatEntryPastEof),
            "bat at offset 0x600",
            "dynamic VHD with a block past its end",
        ),
    ];
    for (fmt, data, mention, what) in cases {
        let id = app
            .create(
                "admin-a",
                json!({"disk_format": fmt, "container_format": "bare"}),
            )
            .await;
        let (s, v) = app.upload(&id, "admin-a", data).await;
        assert_error(s, &v, StatusCode::BAD_REQUEST);
        assert!(
            v["message"].as_str().unwrap().contains(mention),
            "{what}: {v}"
        );
        let (_, img) = app.get(&format!("/v2/images/{id}"), "admin-a").await;
        assert_eq!(img["status"], "queued", "{what}");
        assert_eq!(
            store_objects(&app),
            Vec::<String>::new(),
            "{what}: nothing stored"
        );
    }
    for (fmt, name, vsize) in [
        ("qcow2", "plain.qcow2", 1u64 << 20),
        ("vhd", "disk.vhd", 4 << 20),
    ] {
        let id = app
            .create(
                "admin-a",
                json!({"disk_format": fmt, "container_format": "bare"}),
            )
            .await;
        let (s, v) = app.upload(&id, "admin-a", read(name)).await;
        assert_eq!(s, StatusCode::NO_CONTENT, "{name}: {v}");
        let (_, img) = app.get(&format!("/v2/images/{id}"), "admin-a").await;
        assert_eq!(img["status"], "active");
        let got = img["virtual_size"].as_u64().unwrap();
        assert!(
            got >= vsize && got < vsize + (1 << 20),
            "{name}: virtual size {got}"
        );
    }
}

async fn restart_resets_uploads_in_flight(app: TestApp) {
    // What a server killed mid-upload leaves: an image in `saving` under a lease nobody
    // renews, and part of its data in the store.
    let id = app.create("admin-a", raw_image()).await;
    let past = cloudimg_api::clock::stamp(
        std::time::SystemTime::now() - std::time::Duration::from_secs(5),
    );
    assert!(
        cloudimg_api::db::images::begin_upload(&app.st.db, &id, "dead-server:1", &past, &past)
            .await
            .unwrap()
    );
    let obj = cloudimg_api::service::data::object_path(&app.st, &id);
    std::fs::write(app.store_dir().join(&obj.name), b"half an image").unwrap();
    std::fs::write(
        app.store_dir().join(format!("{}-00001", obj.name)),
        b"a segment",
    )
    .unwrap();
    let (_, v) = app.get(&format!("/v2/images/{id}"), "admin-a").await;
    assert_eq!(v["status"], "saving");
    // While the lease holds, nobody else may upload.
    let (s, v) = app.upload(&id, "admin-a", vec![1]).await;
    assert_error(s, &v, StatusCode::CONFLICT);
    // A server starts on the same catalog and store.
    let tokens = app.dir.path().join("tokens.json");
    std::fs::write(&tokens, common::TOKENS).unwrap();
    let cfg = cloudimg_api::server::ServeConfig {
        db_url: app.db_url.clone(),
        store_url: app.dir.path().join("store").display().to_string(),
        listen: "127.0.0.1:0".parse().unwrap(),
        auth: cloudimg_api::server::AuthConfig::Static(tokens),
        limits: Default::default(),
        drain: std::time::Duration::from_secs(1),
        workers: 0,
        files: None,
        task_ttl: cloudimg_api::worker::DEFAULT_TASK_TTL,
    };
    let st2 = cloudimg_api::server::build_state(&cfg).await.unwrap();
    let img = cloudimg_api::db::images::get(&st2.db, &id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(img.status, "queued");
    assert_eq!(
        store_objects(&app),
        Vec::<String>::new(),
        "the dead upload's data is removed"
    );
    // The image takes a new upload.
    let (s, _) = app.upload(&id, "admin-a", bytes(5000, 9)).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let (_, v) = app.get(&format!("/v2/images/{id}"), "admin-a").await;
    assert_eq!(v["status"], "active");
}
