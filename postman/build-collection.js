// The source of postman/renrakumo.postman_collection.json and postman/local.postman_environment.json:
// edit this file, then run `node postman/build-collection.js postman` (CI checks the JSON matches).
const fs = require('fs');
const path = require('path');
const out = process.argv[2];

let seq = 0;
const uid = (name) => {
  seq += 1;
  const hex = seq.toString(16).padStart(12, '0');
  return `5e1f0000-0000-4000-8000-${hex}`;
};

function url(p, query) {
  const [pathPart] = p.split('?');
  const q = query || [];
  const raw = '{{baseUrl}}' + pathPart + (q.length ? '?' + q.map(([k, v]) => `${k}=${v}`).join('&') : '');
  const u = {
    raw,
    host: ['{{baseUrl}}'],
    path: pathPart.replace(/^\//, '').split('/'),
  };
  if (q.length) u.query = q.map(([key, value]) => ({ key, value }));
  return u;
}

const lines = (s) => s.replace(/^\n/, '').replace(/\n\s*$/, '').split('\n');
// Strip the common indentation of a template literal.
function dedent(s) {
  const ls = lines(s);
  const indent = Math.min(...ls.filter((l) => l.trim()).map((l) => l.match(/^ */)[0].length));
  return ls.map((l) => l.slice(indent));
}

const bearer = (v) => ({ type: 'bearer', bearer: [{ key: 'token', value: `{{${v}}}`, type: 'string' }] });
const NOAUTH = { type: 'noauth' };
const JSON_HEADER = { key: 'Content-Type', value: 'application/json' };

function request(name, opts) {
  const item = { id: uid(name), name, request: { method: opts.method, header: [...(opts.headers || [])], url: url(opts.path, opts.query) } };
  if (opts.description) item.request.description = opts.description;
  if (opts.auth) item.request.auth = opts.auth;
  if (opts.json !== undefined) {
    item.request.header.push(JSON_HEADER);
    item.request.body = { mode: 'raw', raw: typeof opts.json === 'string' ? opts.json : JSON.stringify(opts.json, null, 2), options: { raw: { language: 'json' } } };
  }
  if (opts.text !== undefined) {
    // A raw, non-JSON body (CSV): { type: 'text/csv', raw: '…' }.
    item.request.header.push({ key: 'Content-Type', value: opts.text.type });
    item.request.body = { mode: 'raw', raw: opts.text.raw, options: { raw: { language: 'text' } } };
  }
  if (opts.formdata) {
    // Multipart (attachments): [{ key, src, fileName }] for a file read from `src`, relative
    // to newman's --working-dir (postman/, where this collection is); Postman writes the
    // Content-Type with its boundary.
    item.request.body = {
      mode: 'formdata',
      formdata: opts.formdata.map(({ key, src, fileName }) => (fileName ? { key, type: 'file', src, fileName } : { key, type: 'file', src })),
    };
  }
  if (opts.noRedirects) item.protocolProfileBehavior = { followRedirects: false };
  if (opts.form) {
    item.request.header.push({ key: 'Content-Type', value: 'application/x-www-form-urlencoded' });
    item.request.body = { mode: 'urlencoded', urlencoded: opts.form.map(([key, value]) => ({ key, value, type: 'text' })) };
  }
  item.event = [];
  if (opts.pre) item.event.push({ listen: 'prerequest', script: { id: uid(), type: 'text/javascript', exec: dedent(opts.pre) } });
  item.event.push({ listen: 'test', script: { id: uid(), type: 'text/javascript', exec: dedent(opts.test) } });
  item.response = [];
  return item;
}

// Assertions shared by every error answer (RFC 9457).
const problem = (status, extra = '') => `
  pm.test('status is ${status}', function () {
      pm.response.to.have.status(${status});
  });
  pm.test('answer is application/problem+json', function () {
      pm.expect(pm.response.headers.get('Content-Type')).to.match(/^application\\/problem\\+json/);
  });
  const problem = pm.response.json();
  pm.test('problem document has type, title, status and detail', function () {
      pm.expect(problem.type).to.be.a('string').and.match(/^urn:renrakumo:problem:/);
      pm.expect(problem.title).to.be.a('string').and.not.be.empty;
      pm.expect(problem.status).to.eql(${status});
      pm.expect(problem.detail).to.be.a('string').and.not.be.empty;
  });${extra}
`;
const FORMATS = `
  const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
  const RFC3339_UTC = /^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}(\\.\\d+)?Z$/;
`;
const ok = (status) => `
  pm.test('status is ${status}', function () {
      pm.response.to.have.status(${status});
  });
  pm.test('answer is application/json', function () {
      pm.expect(pm.response.headers.get('Content-Type')).to.match(/^application\\/json/);
  });
  const body = pm.response.json();
`;
const noContent = `
  pm.test('status is 204', function () {
      pm.response.to.have.status(204);
  });
  pm.test('no body', function () {
      pm.expect(pm.response.text()).to.eql('');
  });
`;
const tokenPair = (prefix) => `
  pm.test('token pair: Bearer, expires_in, refresh token', function () {
      pm.expect(body.token_type).to.eql('Bearer');
      pm.expect(body.expires_in).to.be.a('number').and.above(0);
      pm.expect(body.access_token).to.be.a('string').and.match(/^[\\w-]+\\.[\\w-]+\\.[\\w-]+$/);
      pm.expect(body.refresh_token).to.be.a('string').and.match(/^rk_rt_/);
  });
  pm.test('Cache-Control: no-store', function () {
      pm.expect(pm.response.headers.get('Cache-Control')).to.include('no-store');
  });
`;

const health = {
  name: 'Health',
  description: 'Liveness and readiness probes; no credentials.',
  item: [
    request('GET /healthz', {
      method: 'GET', path: '/healthz', auth: NOAUTH,
      test: ok(200) + `
        pm.test('status is ok', function () {
            pm.expect(body.status).to.eql('ok');
        });`,
    }),
    request('GET /readyz', {
      method: 'GET', path: '/readyz', auth: NOAUTH,
      test: ok(200) + `
        pm.test('the database answers: ready', function () {
            pm.expect(body.status).to.eql('ready');
        });`,
    }),
  ],
};

const docs = {
  name: 'Documentation',
  description: 'The OpenAPI document and Swagger UI the server serves; no credentials.',
  item: [
    request('GET /api-docs/openapi.json', {
      method: 'GET', path: '/api-docs/openapi.json', auth: NOAUTH,
      test: ok(200) + `
        pm.test('OpenAPI 3 with the roster and app paths', function () {
            pm.expect(body.openapi).to.match(/^3\\./);
            pm.expect(body.paths).to.include.keys('/api/v1/members/import', '/api/v1/members/export', '/api/v1/app/session', '/confirm-email/{token}');
        });`,
    }),
    request('GET / redirects to Swagger UI', {
      method: 'GET', path: '/', auth: NOAUTH, noRedirects: true,
      test: `
        pm.test('status is 302 to /swagger-ui/', function () {
            pm.response.to.have.status(302);
            pm.expect(pm.response.headers.get('Location')).to.eql('/swagger-ui/');
        });`,
    }),
    request('GET /swagger-ui/', {
      method: 'GET', path: '/swagger-ui/', auth: NOAUTH,
      test: `
        pm.test('status is 200, an HTML page', function () {
            pm.response.to.have.status(200);
            pm.expect(pm.response.headers.get('Content-Type')).to.match(/^text\\/html/);
        });`,
    }),
    request('An unknown path → 404', {
      method: 'GET', path: '/api/v1/no-such-thing', auth: NOAUTH,
      test: problem(404),
    }),
    request('A known path with another method → 405 with Allow', {
      method: 'DELETE', path: '/healthz', auth: NOAUTH,
      test: problem(405, `
  pm.test('Allow names the methods the path takes', function () {
      pm.expect(pm.response.headers.get('Allow')).to.eql('GET');
  });`),
    }),
  ],
};

const signIn = {
  name: 'Sign in',
  description: 'JSON login and the OAuth2 password grant. The first admin comes from `renrakumo create-admin` (environment: adminEmail, adminPassword).',
  item: [
    request('Login (JSON)', {
      method: 'POST', path: '/api/v1/auth/login', auth: NOAUTH,
      json: '{\n  "email": "{{adminEmail}}",\n  "password": "{{adminPassword}}"\n}',
      test: ok(200) + tokenPair() + `
        pm.collectionVariables.set('accessToken', body.access_token);
        pm.collectionVariables.set('refreshToken', body.refresh_token);`,
    }),
    request('Login with a wrong password → 401 invalid_grant', {
      method: 'POST', path: '/api/v1/auth/login', auth: NOAUTH,
      json: '{\n  "email": "{{adminEmail}}",\n  "password": "not the password at all"\n}',
      test: problem(401, `
        pm.test('OAuth2 error code invalid_grant', function () {
            pm.expect(problem.error).to.eql('invalid_grant');
        });
        pm.test('WWW-Authenticate: Bearer', function () {
            pm.expect(pm.response.headers.get('WWW-Authenticate')).to.match(/^Bearer/);
        });`),
    }),
    request('Token (OAuth2 password grant)', {
      method: 'POST', path: '/api/v1/auth/token', auth: NOAUTH,
      form: [['grant_type', 'password'], ['username', '{{adminEmail}}'], ['password', '{{adminPassword}}']],
      test: ok(200) + tokenPair() + `
        pm.collectionVariables.set('oauthAccessToken', body.access_token);
        pm.collectionVariables.set('oauthRefreshToken', body.refresh_token);`,
    }),
    request('Token with an unknown user → 401 invalid_grant', {
      method: 'POST', path: '/api/v1/auth/token', auth: NOAUTH,
      form: [['grant_type', 'password'], ['username', 'nobody-{{$timestamp}}@postman.example.jp'], ['password', 'whatever password']],
      test: problem(401, `
        pm.test('OAuth2 error code invalid_grant', function () {
            pm.expect(problem.error).to.eql('invalid_grant');
        });`),
    }),
    request('Token with another grant type → 422', {
      method: 'POST', path: '/api/v1/auth/token', auth: NOAUTH,
      form: [['grant_type', 'client_credentials'], ['username', '{{adminEmail}}'], ['password', '{{adminPassword}}']],
      test: problem(422, `
        pm.test('names the field grant_type', function () {
            pm.expect(problem.errors.map(e => e.field)).to.include('grant_type');
        });`),
    }),
    request('GET /me (Bearer)', {
      method: 'GET', path: '/api/v1/me',
      test: ok(200) + `
        pm.test('the admin, as a user', function () {
            pm.expect(body.kind).to.eql('user');
            pm.expect(body.email.toLowerCase()).to.eql(pm.variables.get('adminEmail').trim().toLowerCase());
            pm.expect(body.role).to.eql('admin');
            pm.expect(body.org_name).to.eql('Postman School');
            pm.expect(body.id).to.be.a('string').and.not.be.empty;
            pm.expect(body.org_id).to.be.a('string').and.not.be.empty;
        });
        pm.test('the first admin holds contacts:read', function () {
            pm.expect(body.scopes).to.include.members(['lists:read', 'members:write', 'messages:send', 'contacts:read']);
        });
        pm.collectionVariables.set('adminId', body.id);`,
    }),
    request('GET /me (OAuth2 token)', {
      method: 'GET', path: '/api/v1/me', auth: bearer('oauthAccessToken'),
      test: ok(200) + `
        pm.test('the same admin', function () {
            pm.expect(body.kind).to.eql('user');
            pm.expect(body.id).to.eql(pm.collectionVariables.get('adminId'));
        });`,
    }),
    request('GET /me without credentials → 401', {
      method: 'GET', path: '/api/v1/me', auth: NOAUTH,
      test: problem(401),
    }),
  ],
};

const users = {
  name: 'Users',
  description: 'Staff accounts of the organisation, managed by the admin.',
  item: [
    request('Create a sender', {
      method: 'POST', path: '/api/v1/users',
      pre: `
        // A unique address per run: addresses are unique across organisations.
        const stamp = Date.now() + '-' + Math.floor(Math.random() * 1e6);
        pm.collectionVariables.set('senderEmail', 'sender-' + stamp + '@postman.example.jp');
        pm.collectionVariables.set('senderPassword', 'sender passphrase ' + stamp);`,
      json: '{\n  "email": "{{senderEmail}}",\n  "password": "{{senderPassword}}",\n  "name": "佐藤 先生",\n  "role": "sender"\n}',
      test: ok(201) + FORMATS + `
        pm.test('the new sender', function () {
            pm.expect(body.id).to.match(UUID_V7);
            pm.expect(body.email).to.eql(pm.collectionVariables.get('senderEmail'));
            pm.expect(body.name).to.eql('佐藤 先生');
            pm.expect(body.role).to.eql('sender');
            pm.expect(body.permissions).to.eql([]);
            pm.expect(body).to.not.have.property('password');
            pm.expect(body).to.not.have.property('password_hash');
            pm.expect(body.created_at).to.match(RFC3339_UTC);
            pm.expect(body.updated_at).to.match(RFC3339_UTC);
        });
        pm.collectionVariables.set('senderId', body.id);`,
    }),
    request('Create the same address again → 409', {
      method: 'POST', path: '/api/v1/users',
      json: '{\n  "email": "{{senderEmail}}",\n  "password": "another passphrase",\n  "name": "Duplicate",\n  "role": "viewer"\n}',
      test: problem(409, `
        pm.test('names the field email', function () {
            pm.expect(problem.errors.map(e => e.field)).to.include('email');
        });`),
    }),
    request('Create with bad fields → 422 listing every field', {
      method: 'POST', path: '/api/v1/users',
      json: { email: 'not-an-address', password: 'short', name: '   ', role: 'sender', permissions: ['lists:read'] },
      test: problem(422, `
        pm.test('lists every bad field', function () {
            const fields = problem.errors.map(e => e.field);
            pm.expect(fields).to.include.members(['email', 'password', 'name', 'permissions[0]']);
            problem.errors.forEach(e => pm.expect(e.message).to.be.a('string').and.not.be.empty);
        });`),
    }),
    request('Sign in as the sender', {
      method: 'POST', path: '/api/v1/auth/login', auth: NOAUTH,
      json: '{\n  "email": "{{senderEmail}}",\n  "password": "{{senderPassword}}"\n}',
      test: ok(200) + tokenPair() + `
        pm.collectionVariables.set('senderAccessToken', body.access_token);`,
    }),
    request('A sender may not list users → 403', {
      method: 'GET', path: '/api/v1/users', auth: bearer('senderAccessToken'),
      test: problem(403),
    }),
    request('List users, first page (limit=1)', {
      method: 'GET', path: '/api/v1/users', query: [['limit', '1']],
      test: ok(200) + `
        pm.test('one item and a cursor to the next page', function () {
            pm.expect(body.items).to.be.an('array').with.lengthOf(1);
            pm.expect(body.next_cursor).to.be.a('string').and.not.be.empty;
        });
        pm.test('oldest first: the admin', function () {
            pm.expect(body.items[0].id).to.eql(pm.collectionVariables.get('adminId'));
        });
        pm.collectionVariables.set('usersSeen', JSON.stringify(body.items.map(u => u.id)));
        pm.collectionVariables.set('usersCursor', body.next_cursor);`,
    }),
    request('List users, next page (follows next_cursor)', {
      method: 'GET', path: '/api/v1/users', query: [['limit', '1'], ['cursor', '{{usersCursor}}']],
      description: 'Runs again while `next_cursor` is present (setNextRequest), then checks that the pages together hold both users exactly once.',
      test: ok(200) + `
        const seen = JSON.parse(pm.collectionVariables.get('usersSeen') || '[]');
        pm.test('at most one item per page, none seen before', function () {
            pm.expect(body.items.length).to.be.at.most(1);
            body.items.forEach(u => pm.expect(seen).to.not.include(u.id));
        });
        body.items.forEach(u => seen.push(u.id));
        pm.collectionVariables.set('usersSeen', JSON.stringify(seen));
        if (body.next_cursor && seen.length < 50) {
            pm.collectionVariables.set('usersCursor', body.next_cursor);
            pm.execution.setNextRequest(pm.info.requestName);
        } else {
            pm.test('last page: no next_cursor; the pages hold the admin and the sender', function () {
                pm.expect(body.next_cursor == null).to.be.true;
                pm.expect(seen).to.include.members([pm.collectionVariables.get('adminId'), pm.collectionVariables.get('senderId')]);
            });
        }`,
    }),
    request('List users with a forged cursor → 422', {
      method: 'GET', path: '/api/v1/users', query: [['limit', '1'], ['cursor', 'bm90LWEtY3Vyc29y']],
      test: problem(422, `
        pm.test('names the field cursor', function () {
            pm.expect(problem.errors.map(e => e.field)).to.include('cursor');
        });`),
    }),
    request('Get the sender', {
      method: 'GET', path: '/api/v1/users/{{senderId}}',
      test: ok(200) + `
        pm.test('the sender', function () {
            pm.expect(body.id).to.eql(pm.collectionVariables.get('senderId'));
            pm.expect(body.email).to.eql(pm.collectionVariables.get('senderEmail'));
            pm.expect(body.role).to.eql('sender');
        });`,
    }),
    request('Rename the sender and grant contacts:read', {
      method: 'PATCH', path: '/api/v1/users/{{senderId}}',
      json: { name: '佐藤 花子', permissions: ['contacts:read'] },
      test: ok(200) + `
        pm.test('name and permissions changed, role kept', function () {
            pm.expect(body.id).to.eql(pm.collectionVariables.get('senderId'));
            pm.expect(body.name).to.eql('佐藤 花子');
            pm.expect(body.permissions).to.eql(['contacts:read']);
            pm.expect(body.role).to.eql('sender');
        });
        pm.test('updated_at is not before created_at', function () {
            pm.expect(Date.parse(body.updated_at)).to.be.at.least(Date.parse(body.created_at));
        });`,
    }),
    request('Demote the only admin → 409', {
      method: 'PATCH', path: '/api/v1/users/{{adminId}}',
      json: { role: 'sender' },
      test: problem(409, `
        pm.test('names the field role', function () {
            pm.expect(problem.errors.map(e => e.field)).to.include('role');
        });`),
    }),
    request('Delete the sender', {
      method: 'DELETE', path: '/api/v1/users/{{senderId}}',
      test: noContent,
    }),
    request('The deleted sender is gone → 404', {
      method: 'GET', path: '/api/v1/users/{{senderId}}',
      test: problem(404),
    }),
    request("The deleted sender's token stops working → 401", {
      method: 'GET', path: '/api/v1/me', auth: bearer('senderAccessToken'),
      test: problem(401),
    }),
  ],
};


const lists = {
  name: 'Lists',
  description: 'Lists (classes, grades, clubs, routes): the groups messages go to.',
  item: [
    request('Create a list', {
      method: 'POST', path: '/api/v1/lists',
      json: { name: '1年A組', description: '2026年度 1年A組の保護者' },
      test: ok(201) + FORMATS + `
        pm.test('the new list, empty', function () {
            pm.expect(body.id).to.match(UUID_V7);
            pm.expect(body.name).to.eql('1年A組');
            pm.expect(body.description).to.eql('2026年度 1年A組の保護者');
            pm.expect(body.member_count).to.eql(0);
            pm.expect(body.join_code).to.eql(null);
            pm.expect(body.created_at).to.match(RFC3339_UTC);
        });
        pm.collectionVariables.set('listId', body.id);`,
    }),
    request('Create a second list', {
      method: 'POST', path: '/api/v1/lists',
      json: { name: 'サッカー部' },
      test: ok(201) + `
        pm.test('no description', function () {
            pm.expect(body.name).to.eql('サッカー部');
            pm.expect(body.description).to.eql(null);
            pm.expect(body.member_count).to.eql(0);
        });
        pm.collectionVariables.set('list2Id', body.id);`,
    }),
    request('Create a list with a name in use → 409', {
      method: 'POST', path: '/api/v1/lists',
      json: { name: '1年A組' },
      test: problem(409, `
        pm.test('names the field name', function () {
            pm.expect(problem.errors.map(e => e.field)).to.include('name');
        });`),
    }),
    request('Create a list with an empty name → 422', {
      method: 'POST', path: '/api/v1/lists',
      json: { name: '  ', description: 'x'.repeat(501) },
      test: problem(422, `
        pm.test('names the fields name and description', function () {
            pm.expect(problem.errors.map(e => e.field)).to.include.members(['name', 'description']);
        });`),
    }),
    request('List lists (limit=1)', {
      method: 'GET', path: '/api/v1/lists', query: [['limit', '1']],
      test: ok(200) + `
        pm.test('one item and a cursor', function () {
            pm.expect(body.items).to.have.lengthOf(1);
            pm.expect(body.next_cursor).to.be.a('string').and.not.be.empty;
        });
        pm.collectionVariables.set('listsCursor', body.next_cursor);
        pm.collectionVariables.set('listsFirst', body.items[0].id);`,
    }),
    request('List lists, next page', {
      method: 'GET', path: '/api/v1/lists', query: [['limit', '1'], ['cursor', '{{listsCursor}}']],
      test: ok(200) + `
        pm.test('the other list, last page', function () {
            pm.expect(body.items).to.have.lengthOf(1);
            pm.expect(body.items[0].id).to.not.eql(pm.collectionVariables.get('listsFirst'));
            pm.expect([pm.collectionVariables.get('listId'), pm.collectionVariables.get('list2Id')]).to.include.members([body.items[0].id, pm.collectionVariables.get('listsFirst')]);
            pm.expect(body.next_cursor == null).to.be.true;
        });`,
    }),
    request('Search lists by name (q)', {
      method: 'GET', path: '/api/v1/lists', query: [['q', 'A組']],
      test: ok(200) + `
        pm.test('only the matching list', function () {
            pm.expect(body.items.map(l => l.id)).to.eql([pm.collectionVariables.get('listId')]);
        });`,
    }),
    request('Get a list', {
      method: 'GET', path: '/api/v1/lists/{{listId}}',
      test: ok(200) + `
        pm.test('the list', function () {
            pm.expect(body.id).to.eql(pm.collectionVariables.get('listId'));
            pm.expect(body.name).to.eql('1年A組');
            pm.expect(body).to.have.property('member_count');
        });`,
    }),
    request('Rename a list', {
      method: 'PATCH', path: '/api/v1/lists/{{listId}}',
      json: { name: '1年A組（2026）' },
      test: ok(200) + `
        pm.test('renamed, description kept', function () {
            pm.expect(body.name).to.eql('1年A組（2026）');
            pm.expect(body.description).to.eql('2026年度 1年A組の保護者');
        });`,
    }),
    request('Rename a list to a name in use → 409', {
      method: 'PATCH', path: '/api/v1/lists/{{list2Id}}',
      json: { name: '1年A組（2026）' },
      test: problem(409, `
        pm.test('names the field name', function () {
            pm.expect(problem.errors.map(e => e.field)).to.include('name');
        });`),
    }),
    request('Get an unknown list → 404', {
      method: 'GET', path: '/api/v1/lists/00000000-0000-7000-8000-000000000000',
      test: problem(404),
    }),
  ],
};

const members = {
  name: 'Members',
  description: 'Guardians: up to four addresses and four devices, attributes, lists, status, search, promotion.',
  item: [
    request('Create a member', {
      method: 'POST', path: '/api/v1/members',
      json: '{\n  "name": "山田 花子",\n  "name_kana": "ヤマダ ハナコ",\n  "student_name": "山田 太郎",\n  "relation": "母",\n  "external_id": "S0001",\n  "emails": ["hanako.yamada@example.jp", "Taro..Papa@docomo.ne.jp"],\n  "attributes": {"grade": "1", "class": "A"},\n  "list_ids": ["{{listId}}"]\n}',
      test: ok(201) + FORMATS + `
        pm.test('the new guardian, active, in the list', function () {
            pm.expect(body.id).to.match(UUID_V7);
            pm.expect(body.name).to.eql('山田 花子');
            pm.expect(body.student_name).to.eql('山田 太郎');
            pm.expect(body.external_id).to.eql('S0001');
            pm.expect(body.status).to.eql('active');
            pm.expect(body.attributes).to.eql({ grade: '1', class: 'A' });
            pm.expect(body.list_ids).to.eql([pm.collectionVariables.get('listId')]);
            pm.expect(body.devices).to.eql([]);
        });
        pm.test('the admin (contacts:read) sees the addresses unmasked', function () {
            pm.expect(body.emails.map(e => e.address)).to.eql(['hanako.yamada@example.jp', 'Taro..Papa@docomo.ne.jp']);
            body.emails.forEach(e => pm.expect(e.status).to.eql('active'));
        });
        pm.collectionVariables.set('memberId', body.id);`,
    }),
    request('Create a member with five addresses → 422', {
      method: 'POST', path: '/api/v1/members',
      json: { name: '五 アドレス', emails: ['a@example.jp', 'b@example.jp', 'c@example.jp', 'd@example.jp', 'e@example.jp'] },
      test: problem(422, `
        pm.test('names the fifth address', function () {
            pm.expect(problem.errors.map(e => e.field)).to.include('emails[4]');
        });`),
    }),
    request('Create a member with bad fields → 422 listing every field', {
      method: 'POST', path: '/api/v1/members',
      json: { name: '', emails: ['not-an-address', 'x@example.jp', 'X@example.jp'], relation: 'r'.repeat(21) },
      test: problem(422, `
        pm.test('lists every bad field', function () {
            pm.expect(problem.errors.map(e => e.field)).to.include.members(['name', 'relation', 'emails[0]', 'emails[2]']);
        });`),
    }),
    request('Create a member in an unknown list → 422', {
      method: 'POST', path: '/api/v1/members',
      json: { name: '不明 リスト', list_ids: ['00000000-0000-7000-8000-000000000000'] },
      test: problem(422, `
        pm.test('names the list id', function () {
            pm.expect(problem.errors.map(e => e.field)).to.include('list_ids[0]');
        });`),
    }),
    request('Create a member with an external_id in use → 409', {
      method: 'POST', path: '/api/v1/members',
      json: { name: '重複 外部ID', external_id: 'S0001' },
      test: problem(409, `
        pm.test('names the field external_id', function () {
            pm.expect(problem.errors.map(e => e.field)).to.include('external_id');
        });`),
    }),
    request('Upsert by external id: created → 201', {
      method: 'PUT', path: '/api/v1/members/by-external-id/S0002',
      json: '{\n  "name": "鈴木 一郎",\n  "relation": "父",\n  "emails": ["ichiro.suzuki@example.jp"],\n  "attributes": {"grade": "1", "class": "B"},\n  "list_ids": ["{{list2Id}}"]\n}',
      test: ok(201) + `
        pm.test('created with the external id of the path', function () {
            pm.expect(body.external_id).to.eql('S0002');
            pm.expect(body.name).to.eql('鈴木 一郎');
            pm.expect(body.list_ids).to.eql([pm.collectionVariables.get('list2Id')]);
        });
        pm.collectionVariables.set('member2Id', body.id);`,
    }),
    request('Upsert by external id again: replaced → 200', {
      method: 'PUT', path: '/api/v1/members/by-external-id/S0002',
      json: '{\n  "name": "鈴木 一郎",\n  "relation": "父",\n  "emails": ["ichiro.suzuki@example.jp"],\n  "attributes": {"grade": "2", "class": "B"}\n}',
      test: ok(200) + `
        pm.test('the same member, replaced; lists kept (list_ids absent)', function () {
            pm.expect(body.id).to.eql(pm.collectionVariables.get('member2Id'));
            pm.expect(body.attributes).to.eql({ grade: '2', class: 'B' });
            pm.expect(body.list_ids).to.eql([pm.collectionVariables.get('list2Id')]);
        });`,
    }),
    request('Get a member', {
      method: 'GET', path: '/api/v1/members/{{memberId}}',
      test: ok(200) + `
        pm.test('the member', function () {
            pm.expect(body.id).to.eql(pm.collectionVariables.get('memberId'));
            pm.expect(body.emails).to.have.lengthOf(2);
        });`,
    }),
    request('Search members by name (q)', {
      method: 'GET', path: '/api/v1/members', query: [['q', '山田']],
      test: ok(200) + `
        pm.test('only 山田 花子', function () {
            pm.expect(body.items.map(m => m.id)).to.eql([pm.collectionVariables.get('memberId')]);
        });`,
    }),
    request('Search members by e-mail address (q, contacts:read)', {
      method: 'GET', path: '/api/v1/members', query: [['q', 'ICHIRO.SUZUKI']],
      test: ok(200) + `
        pm.test('only 鈴木 一郎', function () {
            pm.expect(body.items.map(m => m.id)).to.eql([pm.collectionVariables.get('member2Id')]);
        });`,
    }),
    request('Filter members by attribute (attr.grade=1)', {
      method: 'GET', path: '/api/v1/members', query: [['attr.grade', '1']],
      test: ok(200) + `
        pm.test('only the first-grade guardian', function () {
            pm.expect(body.items.map(m => m.id)).to.eql([pm.collectionVariables.get('memberId')]);
        });`,
    }),
    request('Filter members by list (list_id)', {
      method: 'GET', path: '/api/v1/members', query: [['list_id', '{{list2Id}}']],
      test: ok(200) + `
        pm.test('only the member of that list', function () {
            pm.expect(body.items.map(m => m.id)).to.eql([pm.collectionVariables.get('member2Id')]);
        });`,
    }),
    request('List members (limit=1)', {
      method: 'GET', path: '/api/v1/members', query: [['limit', '1']],
      test: ok(200) + `
        pm.test('one item and a cursor', function () {
            pm.expect(body.items).to.have.lengthOf(1);
            pm.expect(body.next_cursor).to.be.a('string').and.not.be.empty;
        });
        pm.collectionVariables.set('membersCursor', body.next_cursor);
        pm.collectionVariables.set('membersFirst', body.items[0].id);`,
    }),
    request('List members, next page', {
      method: 'GET', path: '/api/v1/members', query: [['limit', '1'], ['cursor', '{{membersCursor}}']],
      test: ok(200) + `
        pm.test('the other member, last page', function () {
            pm.expect(body.items).to.have.lengthOf(1);
            pm.expect(body.items[0].id).to.not.eql(pm.collectionVariables.get('membersFirst'));
            pm.expect(body.next_cursor == null).to.be.true;
        });`,
    }),
    request('Filter members with an unknown parameter → 422', {
      method: 'GET', path: '/api/v1/members', query: [['grade', '1']],
      test: problem(422, `
        pm.test('names the parameter', function () {
            pm.expect(problem.errors.map(e => e.field)).to.include('grade');
        });`),
    }),
    request('Change a member (attributes merge, null removes)', {
      method: 'PATCH', path: '/api/v1/members/{{memberId}}',
      json: { relation: '祖母', attributes: { club: 'サッカー部', class: null } },
      test: ok(200) + `
        pm.test('only the fields present changed', function () {
            pm.expect(body.relation).to.eql('祖母');
            pm.expect(body.name).to.eql('山田 花子');
            pm.expect(body.attributes).to.eql({ grade: '1', club: 'サッカー部' });
            pm.expect(body.emails).to.have.lengthOf(2);
        });`,
    }),
    request('Suspend a member', {
      method: 'POST', path: '/api/v1/members/{{memberId}}/suspend',
      test: ok(200) + `
        pm.test('suspended', function () {
            pm.expect(body.status).to.eql('suspended');
        });`,
    }),
    request('Filter members by status=suspended', {
      method: 'GET', path: '/api/v1/members', query: [['status', 'suspended']],
      test: ok(200) + `
        pm.test('only the suspended member', function () {
            pm.expect(body.items.map(m => m.id)).to.eql([pm.collectionVariables.get('memberId')]);
        });`,
    }),
    request('Approve a suspended member → 409', {
      method: 'POST', path: '/api/v1/members/{{memberId}}/approve',
      test: problem(409, `
        pm.test('names the field status', function () {
            pm.expect(problem.errors.map(e => e.field)).to.include('status');
        });`),
    }),
    request('Resume a member', {
      method: 'POST', path: '/api/v1/members/{{memberId}}/resume',
      pre: `
        // Reset the counter of the device loop that follows.
        pm.collectionVariables.set('deviceCount', '0');`,
      test: ok(200) + `
        pm.test('active again', function () {
            pm.expect(body.status).to.eql('active');
        });`,
    }),
    request('Register a device (four times)', {
      method: 'POST', path: '/api/v1/members/{{memberId}}/devices',
      description: 'Runs four times (setNextRequest), each with a new token: a guardian holds up to four devices.',
      pre: `
        const n = Number(pm.collectionVariables.get('deviceCount') || '0') + 1;
        pm.collectionVariables.set('deviceCount', String(n));
        pm.collectionVariables.set('devicePlatform', n % 2 ? 'apns' : 'fcm');
        pm.collectionVariables.set('deviceToken', 'f0e1d2c3b4a5968778695a4b3c2d1e0f' + Date.now().toString(16) + 'a' + n);`,
      json: '{\n  "platform": "{{devicePlatform}}",\n  "token": "{{deviceToken}}",\n  "app_id": "jp.example.renrakumo"\n}',
      test: ok(201) + `
        pm.test('registered, token shown in full to contacts:read', function () {
            pm.expect(body.id).to.be.a('string').and.not.be.empty;
            pm.expect(body.platform).to.eql(pm.collectionVariables.get('devicePlatform'));
            pm.expect(body.token).to.eql(pm.collectionVariables.get('deviceToken'));
            pm.expect(body.app_id).to.eql('jp.example.renrakumo');
        });
        const n = Number(pm.collectionVariables.get('deviceCount'));
        if (n === 1) {
            pm.collectionVariables.set('deviceId', body.id);
        }
        if (n < 4) {
            pm.execution.setNextRequest(pm.info.requestName);
        }`,
    }),
    request('A fifth device → 409', {
      method: 'POST', path: '/api/v1/members/{{memberId}}/devices',
      json: { platform: 'fcm', token: 'fifth-device-token-0123456789' },
      test: problem(409, `
        pm.test('names the field devices', function () {
            pm.expect(problem.errors.map(e => e.field)).to.include('devices');
        });`),
    }),
    request('A device with a bad token → 422', {
      method: 'POST', path: '/api/v1/members/{{memberId}}/devices',
      json: { platform: 'apns', token: 'has spaces in it' },
      test: problem(422, `
        pm.test('names the field token', function () {
            pm.expect(problem.errors.map(e => e.field)).to.include('token');
        });`),
    }),
    request('List devices', {
      method: 'GET', path: '/api/v1/members/{{memberId}}/devices',
      test: ok(200) + `
        pm.test('four devices', function () {
            pm.expect(body).to.be.an('array').with.lengthOf(4);
            pm.expect(body.map(d => d.id)).to.include(pm.collectionVariables.get('deviceId'));
        });`,
    }),
    request('Remove a device', {
      method: 'DELETE', path: '/api/v1/members/{{memberId}}/devices/{{deviceId}}',
      test: noContent,
    }),
    request('Remove the same device again → 404', {
      method: 'DELETE', path: '/api/v1/members/{{memberId}}/devices/{{deviceId}}',
      test: problem(404),
    }),
    request('Create a read-only key (members:read) for the masked view', {
      method: 'POST', path: '/api/v1/api-keys',
      json: { name: 'masked view', scopes: ['lists:read', 'members:read'] },
      test: ok(201) + `
        pm.test('never expires', function () {
            pm.expect(body.expires_at).to.eql(null);
            pm.expect(body.status).to.eql('active');
        });
        pm.collectionVariables.set('readKey', body.key);
        pm.collectionVariables.set('readKeyId', body.id);`,
    }),
    request('Without contacts:read addresses and tokens are masked', {
      method: 'GET', path: '/api/v1/members/{{memberId}}', auth: NOAUTH,
      headers: [{ key: 'X-API-Key', value: '{{readKey}}' }],
      test: ok(200) + `
        pm.test('addresses masked', function () {
            pm.expect(body.emails.map(e => e.address)).to.eql(['h***@example.jp', 'T***@docomo.ne.jp']);
        });
        pm.test('device tokens masked', function () {
            pm.expect(body.devices).to.have.lengthOf(3);
            body.devices.forEach(d => pm.expect(d.token).to.match(/^….{4}$/));
        });`,
    }),
    request('Without contacts:read q does not match addresses', {
      method: 'GET', path: '/api/v1/members', query: [['q', 'ichiro.suzuki']], auth: NOAUTH,
      headers: [{ key: 'X-API-Key', value: '{{readKey}}' }],
      test: ok(200) + `
        pm.test('no match', function () {
            pm.expect(body.items).to.eql([]);
        });`,
    }),
    request('A read-only key may not change members → 403', {
      method: 'PATCH', path: '/api/v1/members/{{memberId}}', auth: NOAUTH,
      headers: [{ key: 'X-API-Key', value: '{{readKey}}' }],
      json: { name: 'x' },
      test: problem(403),
    }),
    request('Revoke the read-only key', {
      method: 'DELETE', path: '/api/v1/api-keys/{{readKeyId}}',
      test: noContent,
    }),
    request('Promote grades, dry run', {
      method: 'POST', path: '/api/v1/members/promote',
      json: { attribute: 'grade', changes: { 1: '2', 2: '3', 6: null }, dry_run: true },
      test: ok(200) + `
        pm.test('counts per old value, changes nothing', function () {
            pm.expect(body.dry_run).to.eql(true);
            pm.expect(body.matched['1']).to.eql(1);
            pm.expect(body.matched['2']).to.eql(1);
            pm.expect(body.total).to.eql(2);
        });`,
    }),
    request('The dry run changed nothing', {
      method: 'GET', path: '/api/v1/members/{{memberId}}',
      test: ok(200) + `
        pm.test('still grade 1', function () {
            pm.expect(body.attributes.grade).to.eql('1');
        });`,
    }),
    request('Promote grades', {
      method: 'POST', path: '/api/v1/members/promote',
      json: { attribute: 'grade', changes: { 1: '2', 2: '3', 6: null } },
      test: ok(200) + `
        pm.test('applied at once (no cascade)', function () {
            pm.expect(body.dry_run).to.eql(false);
            pm.expect(body.total).to.eql(2);
        });`,
    }),
    request('Each member moved up one grade', {
      method: 'GET', path: '/api/v1/members', query: [['attr.grade', '3']],
      test: ok(200) + `
        pm.test('the second-grader is now in grade 3, the first-grader not', function () {
            pm.expect(body.items.map(m => m.id)).to.eql([pm.collectionVariables.get('member2Id')]);
        });`,
    }),
    request('Promote without changes → 422', {
      method: 'POST', path: '/api/v1/members/promote',
      json: { attribute: '', changes: {} },
      test: problem(422, `
        pm.test('names attribute and changes', function () {
            pm.expect(problem.errors.map(e => e.field)).to.include.members(['attribute', 'changes']);
        });`),
    }),
  ],
};

const membership = {
  name: 'List membership',
  description: 'Putting members in lists and taking them out, one by one or in bulk.',
  item: [
    request('Put a member in a list', {
      method: 'PUT', path: '/api/v1/lists/{{list2Id}}/members/{{memberId}}',
      test: noContent,
    }),
    request('Put the member in the list again (idempotent)', {
      method: 'PUT', path: '/api/v1/lists/{{list2Id}}/members/{{memberId}}',
      test: noContent,
    }),
    request('Members of a list', {
      method: 'GET', path: '/api/v1/lists/{{list2Id}}/members',
      test: ok(200) + `
        pm.test('both members', function () {
            pm.expect(body.items.map(m => m.id)).to.have.members([pm.collectionVariables.get('memberId'), pm.collectionVariables.get('member2Id')]);
            pm.expect(body.next_cursor == null).to.be.true;
        });`,
    }),
    request('member_count follows', {
      method: 'GET', path: '/api/v1/lists/{{list2Id}}',
      test: ok(200) + `
        pm.test('two members', function () {
            pm.expect(body.member_count).to.eql(2);
        });`,
    }),
    request('Take a member out of a list', {
      method: 'DELETE', path: '/api/v1/lists/{{list2Id}}/members/{{memberId}}',
      test: noContent,
    }),
    request('Put an unknown member in a list → 404', {
      method: 'PUT', path: '/api/v1/lists/{{list2Id}}/members/00000000-0000-7000-8000-000000000000',
      test: problem(404),
    }),
    request('Bulk: copy members to another list', {
      method: 'POST', path: '/api/v1/lists/{{listId}}/members/bulk',
      json: '{\n  "action": "copy",\n  "member_ids": ["{{memberId}}", "{{member2Id}}"],\n  "to_list_id": "{{list2Id}}"\n}',
      test: ok(200) + `
        pm.test('only the member of the source list was copied', function () {
            pm.expect(body.affected).to.eql(1);
        });`,
    }),
    request('Bulk: move members to another list', {
      method: 'POST', path: '/api/v1/lists/{{list2Id}}/members/bulk',
      json: '{\n  "action": "move",\n  "member_ids": ["{{member2Id}}"],\n  "to_list_id": "{{listId}}"\n}',
      test: ok(200) + `
        pm.test('one moved', function () {
            pm.expect(body.affected).to.eql(1);
        });`,
    }),
    request('After the move', {
      method: 'GET', path: '/api/v1/members/{{member2Id}}',
      test: ok(200) + `
        pm.test('in the target list only', function () {
            pm.expect(body.list_ids).to.eql([pm.collectionVariables.get('listId')]);
        });`,
    }),
    request('Bulk with an unknown member → 422', {
      method: 'POST', path: '/api/v1/lists/{{listId}}/members/bulk',
      json: '{\n  "action": "add",\n  "member_ids": ["{{memberId}}", "00000000-0000-7000-8000-000000000000"]\n}',
      test: problem(422, `
        pm.test('names the unknown member', function () {
            pm.expect(problem.errors.map(e => e.field)).to.eql(['member_ids[1]']);
        });`),
    }),
    request('Bulk copy without a target → 422', {
      method: 'POST', path: '/api/v1/lists/{{listId}}/members/bulk',
      json: '{\n  "action": "copy",\n  "member_ids": ["{{memberId}}"]\n}',
      test: problem(422, `
        pm.test('names the field to_list_id', function () {
            pm.expect(problem.errors.map(e => e.field)).to.include('to_list_id');
        });`),
    }),
    request('Delete a list', {
      method: 'DELETE', path: '/api/v1/lists/{{list2Id}}',
      test: noContent,
    }),
    request('The deleted list is gone → 404', {
      method: 'GET', path: '/api/v1/lists/{{list2Id}}',
      test: problem(404),
    }),
    request('Its members stay on the roster', {
      method: 'GET', path: '/api/v1/members/{{memberId}}',
      test: ok(200) + `
        pm.test('still there, without the deleted list', function () {
            pm.expect(body.list_ids).to.eql([pm.collectionVariables.get('listId')]);
        });`,
    }),
    request('Delete a member', {
      method: 'DELETE', path: '/api/v1/members/{{memberId}}',
      test: noContent,
    }),
    request('The deleted member is gone → 404', {
      method: 'GET', path: '/api/v1/members/{{memberId}}',
      test: problem(404),
    }),
    request('The list counts one member less', {
      method: 'GET', path: '/api/v1/lists/{{listId}}',
      test: ok(200) + `
        pm.test('one member left', function () {
            pm.expect(body.member_count).to.eql(1);
        });`,
    }),
  ],
};

const apiKeys = {
  name: 'API keys',
  description: 'Scoped, expiring keys for school-information systems; the key is shown once.',
  item: [
    request('Create an API key (lists:read)', {
      method: 'POST', path: '/api/v1/api-keys',
      pre: `
        pm.collectionVariables.set('apiKeyExpiresAt', new Date(Date.now() + 30 * 24 * 3600 * 1000).toISOString());`,
      json: '{\n  "name": "校務支援システム (Postman)",\n  "scopes": ["lists:read"],\n  "expires_at": "{{apiKeyExpiresAt}}"\n}',
      test: ok(201) + FORMATS + `
        pm.test('the key is shown once, with its prefix', function () {
            pm.expect(body.key).to.be.a('string').and.match(/^rk_live_/);
            pm.expect(body.prefix).to.eql(body.key.slice(0, 12));
        });
        pm.test('scopes, expiry and status', function () {
            pm.expect(body.id).to.match(UUID_V7);
            pm.expect(body.name).to.eql('校務支援システム (Postman)');
            pm.expect(body.created_at).to.match(RFC3339_UTC);
            pm.expect(body.expires_at).to.match(RFC3339_UTC);
            pm.expect(body.scopes).to.eql(['lists:read']);
            pm.expect(body.single_use).to.eql(false);
            pm.expect(body.status).to.eql('active');
            pm.expect(Date.parse(body.expires_at)).to.eql(Date.parse(pm.collectionVariables.get('apiKeyExpiresAt')));
            pm.expect(body.revoked_at).to.eql(null);
        });
        pm.collectionVariables.set('apiKey', body.key);
        pm.collectionVariables.set('apiKeyId', body.id);`,
    }),
    request('GET /me with X-API-Key', {
      method: 'GET', path: '/api/v1/me', auth: NOAUTH,
      headers: [{ key: 'X-API-Key', value: '{{apiKey}}' }],
      test: ok(200) + `
        pm.test('the key, with its scopes only', function () {
            pm.expect(body.kind).to.eql('api_key');
            pm.expect(body.id).to.eql(pm.collectionVariables.get('apiKeyId'));
            pm.expect(body.name).to.eql('校務支援システム (Postman)');
            pm.expect(body.scopes).to.eql(['lists:read']);
            pm.expect(body).to.not.have.property('email');
            pm.expect(body).to.not.have.property('role');
        });`,
    }),
    request('The key reads lists (lists:read)', {
      method: 'GET', path: '/api/v1/lists', auth: NOAUTH,
      headers: [{ key: 'X-API-Key', value: '{{apiKey}}' }],
      test: ok(200) + `
        pm.test('a page of lists', function () {
            pm.expect(body.items).to.be.an('array');
            pm.expect(body).to.have.property('next_cursor');
        });`,
    }),
    request('The key may not write lists → 403', {
      method: 'POST', path: '/api/v1/lists', auth: NOAUTH,
      headers: [{ key: 'X-API-Key', value: '{{apiKey}}' }],
      json: { name: 'not allowed' },
      test: problem(403),
    }),
    request('The key may not read members → 403', {
      method: 'GET', path: '/api/v1/members', auth: NOAUTH,
      headers: [{ key: 'X-API-Key', value: '{{apiKey}}' }],
      test: problem(403),
    }),
    request('The key may not export the roster → 403', {
      method: 'GET', path: '/api/v1/members/export', auth: NOAUTH,
      headers: [{ key: 'X-API-Key', value: '{{apiKey}}' }],
      test: problem(403),
    }),
    request('An API key may not manage API keys → 403', {
      method: 'GET', path: '/api/v1/api-keys', auth: NOAUTH,
      headers: [{ key: 'X-API-Key', value: '{{apiKey}}' }],
      test: problem(403),
    }),
    request('List API keys', {
      method: 'GET', path: '/api/v1/api-keys',
      test: ok(200) + `
        const mine = body.items.find(k => k.id === pm.collectionVariables.get('apiKeyId'));
        pm.test('the new key is listed, without the key itself', function () {
            pm.expect(mine).to.be.an('object');
            pm.expect(mine.status).to.eql('active');
            body.items.forEach(k => pm.expect(k).to.not.have.property('key'));
        });
        pm.test('last page', function () {
            pm.expect(body.next_cursor == null).to.be.true;
        });`,
    }),
    request('Get the API key', {
      method: 'GET', path: '/api/v1/api-keys/{{apiKeyId}}',
      test: ok(200) + `
        pm.test('the key, used once, without the key itself', function () {
            pm.expect(body.id).to.eql(pm.collectionVariables.get('apiKeyId'));
            pm.expect(body.prefix).to.eql(pm.collectionVariables.get('apiKey').slice(0, 12));
            pm.expect(body.status).to.eql('active');
            pm.expect(body.last_used_at).to.be.a('string');
            pm.expect(body).to.not.have.property('key');
        });`,
    }),
    request('Single-use key expiring in 3 days → 422', {
      method: 'POST', path: '/api/v1/api-keys',
      pre: `
        pm.collectionVariables.set('inThreeDays', new Date(Date.now() + 3 * 24 * 3600 * 1000).toISOString());`,
      json: '{\n  "name": "one-day pass",\n  "scopes": ["messages:send"],\n  "single_use": true,\n  "expires_at": "{{inThreeDays}}"\n}',
      test: problem(422, `
        pm.test('names the field expires_at', function () {
            pm.expect(problem.errors.map(e => e.field)).to.include('expires_at');
        });`),
    }),
    request('Revoke the API key', {
      method: 'DELETE', path: '/api/v1/api-keys/{{apiKeyId}}',
      test: noContent,
    }),
    request('The revoked key → 401', {
      method: 'GET', path: '/api/v1/me', auth: NOAUTH,
      headers: [{ key: 'X-API-Key', value: '{{apiKey}}' }],
      test: problem(401),
    }),
    request('The revoked key stays on record as revoked', {
      method: 'GET', path: '/api/v1/api-keys/{{apiKeyId}}',
      test: ok(200) + `
        pm.test('status revoked, revoked_at set', function () {
            pm.expect(body.status).to.eql('revoked');
            pm.expect(body.revoked_at).to.be.a('string');
        });`,
    }),
  ],
};

const sessions = {
  name: 'Refresh and logout',
  description: 'Refresh-token rotation with reuse detection, then logout.',
  item: [
    request('Refresh (rotation)', {
      method: 'POST', path: '/api/v1/auth/refresh', auth: NOAUTH,
      json: '{\n  "refresh_token": "{{refreshToken}}"\n}',
      test: ok(200) + tokenPair() + `
        pm.test('a new pair', function () {
            pm.expect(body.refresh_token).to.not.eql(pm.collectionVariables.get('refreshToken'));
            pm.expect(body.access_token).to.not.eql(pm.collectionVariables.get('accessToken'));
        });
        pm.collectionVariables.set('usedRefreshToken', pm.collectionVariables.get('refreshToken'));
        pm.collectionVariables.set('accessToken', body.access_token);
        pm.collectionVariables.set('refreshToken', body.refresh_token);`,
    }),
    request('GET /me with the rotated access token', {
      method: 'GET', path: '/api/v1/me',
      test: ok(200) + `
        pm.test('still the admin', function () {
            pm.expect(body.id).to.eql(pm.collectionVariables.get('adminId'));
        });`,
    }),
    request('Reuse the old refresh token → 401', {
      method: 'POST', path: '/api/v1/auth/refresh', auth: NOAUTH,
      json: '{\n  "refresh_token": "{{usedRefreshToken}}"\n}',
      test: problem(401),
    }),
    request('Reuse ended the session: the new access token → 401', {
      method: 'GET', path: '/api/v1/me',
      test: problem(401),
    }),
    request('Reuse ended the session: the new refresh token → 401', {
      method: 'POST', path: '/api/v1/auth/refresh', auth: NOAUTH,
      json: '{\n  "refresh_token": "{{refreshToken}}"\n}',
      test: problem(401),
    }),
    request('Logout (the OAuth2 session)', {
      method: 'POST', path: '/api/v1/auth/logout', auth: bearer('oauthAccessToken'),
      test: noContent,
    }),
    request('After logout the access token → 401', {
      method: 'GET', path: '/api/v1/me', auth: bearer('oauthAccessToken'),
      test: problem(401),
    }),
    request('After logout the refresh token → 401', {
      method: 'POST', path: '/api/v1/auth/refresh', auth: NOAUTH,
      json: '{\n  "refresh_token": "{{oauthRefreshToken}}"\n}',
      test: problem(401),
    }),
  ],
};

// ---- Roster CSV -------------------------------------------------------------------------
// Small inline rosters in UTF-8, as a school's system or Excel ("CSV UTF-8") writes them.
// The S0002 row is the guardian the Members folder created (鈴木 一郎, grade 3): an update.
const CSV_HEADER = 'name,name_kana,student_name,relation,email1,email2,grade,class,club,external_id,lists';
const CSV_ROWS = [
  '山田 花子,ヤマダ ハナコ,山田 太郎,母,hanako.yamada@example.jp,taro..papa@docomo.ne.jp,1,A,サッカー部,C1001,1年A組;サッカー部',
  '髙橋 一郎,タカハシ イチロウ,髙橋 美咲,父,ichiro.takahashi@example.jp,,1,A,,C1002,1年A組',
  '山﨑 由美,ヤマザキ ユミ,山﨑 蓮,母,yumi.@ezweb.ne.jp,yamazaki.home@example.jp,2,B,サッカー部,C1003,サッカー部',
  '鈴木 一郎,スズキ イチロウ,鈴木 翔太,父,ichiro.suzuki@example.jp,,3,B,,S0002,',
];
// Line 4 (the header is line 1): an address with a space in it.
const CSV_BAD_ROW = '佐藤 ｹﾝﾀ,サトウ ケンタ,佐藤 陽菜,父,kenta sato@example.jp,,1,B,,C1004,1年B組';
const GOOD_CSV = [CSV_HEADER, ...CSV_ROWS].join('\n') + '\n';
// The same rows with the bad one in the middle, CRLF as Excel writes.
const BAD_CSV = [CSV_HEADER, CSV_ROWS[0], CSV_ROWS[1], CSV_BAD_ROW, CSV_ROWS[2], CSV_ROWS[3]].join('\r\n') + '\r\n';
// A guardian reachable only through the app, with a spreadsheet formula for a student name.
const LIST_CSV = 'name,student_name,external_id\n伊藤 結衣の母,"=HYPERLINK(""http://x"")",C1005\n';
const CSV = (raw) => ({ type: 'text/csv', raw });
const EXPORT_HEADER = 'name,name_kana,student_name,relation,email1,email2,email3,email4,grade,class,club,route,external_id,lists';

// An import report with these counts and no errors.
const report = (counts, listsCreated, dryRun = false) => `
  pm.test('report: ${Object.entries(counts).map(([k, v]) => `${k} ${v}`).join(', ')}', function () {
      pm.expect(body.created).to.eql(${counts.created});
      pm.expect(body.updated).to.eql(${counts.updated});
      pm.expect(body.unchanged).to.eql(${counts.unchanged});
  });
  pm.test('read as UTF-8, dry_run ${dryRun}', function () {
      pm.expect(body.encoding).to.eql('UTF-8');
      pm.expect(body.dry_run).to.eql(${dryRun});
  });
  pm.test('lists created: ${listsCreated.length ? listsCreated.join(', ') : 'none'}', function () {
      pm.expect(body.lists_created).to.eql(${JSON.stringify(listsCreated)});
  });
`;
// The export's body: the BOM is checked on the bytes (newman's text() drops a BOM), the
// header and rows on the text (CRLF lines).
const csvAnswer = `
  pm.test('status is 200', function () {
      pm.response.to.have.status(200);
  });
  pm.test('answer is text/csv; charset=utf-8', function () {
      pm.expect(pm.response.headers.get('Content-Type')).to.match(/^text\\/csv/);
      pm.expect(pm.response.headers.get('Content-Type').toLowerCase()).to.include('charset=utf-8');
  });
  const bytes = pm.response.stream;
  const text = pm.response.text();
  const lines = text.replace(/^\\uFEFF/, '').split('\\r\\n');
  pm.test('starts with the UTF-8 BOM (EF BB BF), for Excel', function () {
      pm.expect([bytes[0], bytes[1], bytes[2]]).to.eql([0xEF, 0xBB, 0xBF]);
  });
  pm.test('header line as documented, CRLF line ends', function () {
      pm.expect(lines[0]).to.eql('${EXPORT_HEADER}');
      pm.expect(lines[lines.length - 1]).to.eql('');
  });
  const rows = lines.slice(1, -1);
`;

const roster = {
  name: 'Roster CSV',
  description: 'Import (UTF-8 or Shift_JIS, dry run, all-or-nothing or partial, upsert by external_id or first address) and Excel-ready export of the roster.',
  item: [
    request('Import, dry run (counts, writes nothing)', {
      method: 'POST', path: '/api/v1/members/import', query: [['dry_run', 'true']],
      text: CSV(GOOD_CSV),
      test: ok(200) + report({ created: 3, updated: 1, unchanged: 0 }, ['1年A組', 'サッカー部'], true) + `
        pm.test('no errors', function () {
            pm.expect(body.errors).to.eql([]);
        });`,
    }),
    request('The dry run wrote no member', {
      method: 'GET', path: '/api/v1/members', query: [['q', 'C1001']],
      test: ok(200) + `
        pm.test('no match', function () {
            pm.expect(body.items).to.eql([]);
        });`,
    }),
    request('The dry run created no list', {
      method: 'GET', path: '/api/v1/lists', query: [['q', 'サッカー部']],
      test: ok(200) + `
        pm.test('no match', function () {
            pm.expect(body.items).to.eql([]);
        });`,
    }),
    request('Import a file with one bad row → 422, nothing written', {
      method: 'POST', path: '/api/v1/members/import',
      text: CSV(BAD_CSV),
      test: problem(422, `
        pm.test('one error, with the line (header = line 1) and the column', function () {
            pm.expect(problem.errors).to.have.lengthOf(1);
            pm.expect(problem.errors[0].line).to.eql(4);
            pm.expect(problem.errors[0].field).to.eql('email1');
            pm.expect(problem.errors[0].message).to.be.a('string').and.not.be.empty;
        });`),
    }),
    request('The refused file wrote nothing', {
      method: 'GET', path: '/api/v1/members/{{member2Id}}',
      test: ok(200) + `
        pm.test('鈴木 一郎 not updated', function () {
            pm.expect(body.name_kana).to.eql(null);
            pm.expect(body.student_name).to.eql(null);
        });`,
    }),
    request('Import the same file with partial=true', {
      method: 'POST', path: '/api/v1/members/import', query: [['partial', 'true']],
      text: CSV(BAD_CSV),
      test: ok(200) + report({ created: 3, updated: 1, unchanged: 0 }, ['1年A組', 'サッカー部']) + `
        pm.test('the bad row is reported, with line and field', function () {
            pm.expect(body.errors).to.have.lengthOf(1);
            pm.expect(body.errors[0].line).to.eql(4);
            pm.expect(body.errors[0].field).to.eql('email1');
        });`,
    }),
    request('An imported guardian (q=C1001)', {
      method: 'GET', path: '/api/v1/members', query: [['q', 'C1001']],
      test: ok(200) + `
        const m = body.items[0];
        pm.test('one guardian, as in the file', function () {
            pm.expect(body.items).to.have.lengthOf(1);
            pm.expect(m.name).to.eql('山田 花子');
            pm.expect(m.name_kana).to.eql('ヤマダ ハナコ');
            pm.expect(m.student_name).to.eql('山田 太郎');
            pm.expect(m.relation).to.eql('母');
            pm.expect(m.external_id).to.eql('C1001');
            pm.expect(m.status).to.eql('active');
            pm.expect(m.attributes).to.eql({ grade: '1', class: 'A', club: 'サッカー部' });
        });
        pm.test('the carrier address is kept as written, active', function () {
            pm.expect(m.emails).to.eql([
                { address: 'hanako.yamada@example.jp', status: 'active' },
                { address: 'taro..papa@docomo.ne.jp', status: 'active' },
            ]);
        });
        pm.test('in the two lists of the lists column', function () {
            pm.expect(m.list_ids).to.have.lengthOf(2);
        });
        pm.collectionVariables.set('importedMemberId', m.id);`,
    }),
    request('The lists column created the lists', {
      method: 'GET', path: '/api/v1/lists', query: [['q', 'サッカー部']],
      test: ok(200) + `
        pm.test('サッカー部, with its two guardians', function () {
            pm.expect(body.items).to.have.lengthOf(1);
            pm.expect(body.items[0].name).to.eql('サッカー部');
            pm.expect(body.items[0].member_count).to.eql(2);
        });`,
    }),
    request('The existing guardian was updated by external_id', {
      method: 'GET', path: '/api/v1/members/{{member2Id}}',
      test: ok(200) + `
        pm.test('鈴木 一郎 with the columns of the file', function () {
            pm.expect(body.external_id).to.eql('S0002');
            pm.expect(body.name_kana).to.eql('スズキ イチロウ');
            pm.expect(body.student_name).to.eql('鈴木 翔太');
            pm.expect(body.attributes).to.eql({ grade: '3', class: 'B' });
            pm.expect(body.list_ids).to.eql([pm.collectionVariables.get('listId')]);
        });`,
    }),
    request('The bad row was not imported', {
      method: 'GET', path: '/api/v1/members', query: [['q', 'C1004']],
      test: ok(200) + `
        pm.test('no match', function () {
            pm.expect(body.items).to.eql([]);
        });`,
    }),
    request('Import the good rows again → all unchanged', {
      method: 'POST', path: '/api/v1/members/import',
      text: CSV(GOOD_CSV),
      test: ok(200) + report({ created: 0, updated: 0, unchanged: 4 }, []) + `
        pm.test('no errors', function () {
            pm.expect(body.errors).to.eql([]);
        });`,
    }),
    request('Import into a list (list_id); a formula stays text', {
      method: 'POST', path: '/api/v1/members/import', query: [['list_id', '{{listId}}']],
      text: CSV(LIST_CSV),
      test: ok(200) + report({ created: 1, updated: 0, unchanged: 0 }, []),
    }),
    request('The guardian joined the list', {
      method: 'GET', path: '/api/v1/lists/{{listId}}/members',
      test: ok(200) + `
        const m = body.items.find(m => m.external_id === 'C1005');
        pm.test('鈴木 一郎 and the new guardian, without addresses', function () {
            pm.expect(body.items).to.have.lengthOf(2);
            pm.expect(m.name).to.eql('伊藤 結衣の母');
            pm.expect(m.student_name).to.eql('=HYPERLINK("http://x")');
            pm.expect(m.emails).to.eql([]);
        });`,
    }),
    request('Import into an unknown list → 422', {
      method: 'POST', path: '/api/v1/members/import', query: [['list_id', '00000000-0000-7000-8000-000000000000']],
      text: CSV(LIST_CSV),
      test: problem(422, `
        pm.test('names the parameter list_id', function () {
            pm.expect(problem.errors.map(e => e.field)).to.eql(['list_id']);
        });`),
    }),
    request('Import a file without a name column → 422 at line 1', {
      method: 'POST', path: '/api/v1/members/import',
      text: CSV('email1,grade\nsomeone@example.jp,1\n'),
      test: problem(422, `
        pm.test('the header (line 1) lacks name', function () {
            pm.expect(problem.errors).to.have.lengthOf(1);
            pm.expect(problem.errors[0].field).to.eql('name');
            pm.expect(problem.errors[0].line).to.eql(1);
        });`),
    }),
    request('Import with an unknown parameter → 422', {
      method: 'POST', path: '/api/v1/members/import', query: [['mode', 'replace']],
      text: CSV(LIST_CSV),
      test: problem(422, `
        pm.test('names the parameter', function () {
            pm.expect(problem.errors.map(e => e.field)).to.include('mode');
        });`),
    }),
    request('Import JSON instead of CSV → 415', {
      method: 'POST', path: '/api/v1/members/import',
      json: { name: '山田 花子' },
      test: problem(415),
    }),
    request('Export the roster (CSV for Excel)', {
      method: 'GET', path: '/api/v1/members/export',
      test: csvAnswer + `
        pm.test('a download named members.csv', function () {
            pm.expect(pm.response.headers.get('Content-Disposition')).to.match(/^attachment;\\s*filename="members\\.csv"/);
        });
        pm.test('five guardians', function () {
            pm.expect(rows).to.have.lengthOf(5);
        });
        pm.test('the imported row comes back in the documented columns, addresses unmasked (contacts:read)', function () {
            pm.expect(rows).to.include('山田 花子,ヤマダ ハナコ,山田 太郎,母,hanako.yamada@example.jp,taro..papa@docomo.ne.jp,,,1,A,サッカー部,,C1001,1年A組;サッカー部');
        });
        pm.test('a formula is neutralised with a leading quote', function () {
            pm.expect(rows).to.include('伊藤 結衣の母,,"\\'=HYPERLINK(""http://x"")",,,,,,,,,,C1005,1年A組（2026）');
        });
        // For the round trip below, with its BOM.
        pm.collectionVariables.set('exportCsv', '\\uFEFF' + text.replace(/^\\uFEFF/, ''));`,
    }),
    request('Export one list (list_id)', {
      method: 'GET', path: '/api/v1/members/export', query: [['list_id', '{{listId}}']],
      test: csvAnswer + `
        pm.test('the two guardians of the list', function () {
            pm.expect(rows).to.have.lengthOf(2);
            pm.expect(rows.map(r => r.split(',')[12]).sort()).to.eql(['C1005', 'S0002']);
        });`,
    }),
    request('Export with an unknown parameter → 422', {
      method: 'GET', path: '/api/v1/members/export', query: [['format', 'xlsx']],
      test: problem(422, `
        pm.test('names the parameter', function () {
            pm.expect(problem.errors.map(e => e.field)).to.include('format');
        });`),
    }),
    request('Import the export back (UTF-8 with BOM) → all unchanged', {
      method: 'POST', path: '/api/v1/members/import',
      text: CSV('{{exportCsv}}'),
      test: ok(200) + report({ created: 0, updated: 0, unchanged: 5 }, []) + `
        pm.test('no errors', function () {
            pm.expect(body.errors).to.eql([]);
        });`,
    }),
    request('Create a read-only key (members:read) for the masked export', {
      method: 'POST', path: '/api/v1/api-keys',
      json: { name: 'masked export', scopes: ['members:read'] },
      test: ok(201) + `
        pm.test('active', function () {
            pm.expect(body.status).to.eql('active');
            pm.expect(body.scopes).to.eql(['members:read']);
        });
        pm.collectionVariables.set('exportKey', body.key);
        pm.collectionVariables.set('exportKeyId', body.id);`,
    }),
    request('Without contacts:read the export masks addresses', {
      method: 'GET', path: '/api/v1/members/export', auth: NOAUTH,
      headers: [{ key: 'X-API-Key', value: '{{exportKey}}' }],
      test: csvAnswer + `
        pm.test('masked addresses only', function () {
            pm.expect(text).to.not.include('hanako.yamada@');
            pm.expect(text).to.not.include('taro..papa@');
            pm.expect(rows.find(r => r.startsWith('山田 花子,'))).to.include(',h***@example.jp,t***@docomo.ne.jp,');
        });`,
    }),
    request('A read-only key may not import → 403', {
      method: 'POST', path: '/api/v1/members/import', auth: NOAUTH,
      headers: [{ key: 'X-API-Key', value: '{{exportKey}}' }],
      text: CSV(GOOD_CSV),
      test: problem(403),
    }),
    request('Revoke the export key', {
      method: 'DELETE', path: '/api/v1/api-keys/{{exportKeyId}}',
      test: noContent,
    }),
  ],
};

// ---- Guardian app -----------------------------------------------------------------------
const appSession = `
  pm.test('an app session: Bearer token, expires_in, the profile', function () {
      pm.expect(body.token_type).to.eql('Bearer');
      pm.expect(body.expires_in).to.be.a('number').and.above(0);
      pm.expect(body.access_token).to.be.a('string').and.match(/^[\\w-]+\\.[\\w-]+\\.[\\w-]+$/);
      pm.expect(body).to.not.have.property('refresh_token');
      pm.expect(body.profile.org_name).to.eql('Postman School');
  });
`;

const guardianApp = {
  name: 'Guardian app',
  description: 'The official app: invitation codes, the guardian\'s own profile, double opt-in addresses and devices; join codes, self-registration and approval by staff.',
  item: [
    request('Create a roster key without contacts:read', {
      method: 'POST', path: '/api/v1/api-keys',
      json: { name: 'roster only', scopes: ['members:read', 'members:write'] },
      test: ok(201) + `
        pm.collectionVariables.set('rosterKey', body.key);`,
    }),
    request('Invite with a key lacking contacts:read → 403', {
      method: 'POST', path: '/api/v1/members/{{importedMemberId}}/invitations', auth: NOAUTH,
      headers: [{ key: 'X-API-Key', value: '{{rosterKey}}' }],
      description: 'An invitation opens an app session that sees the guardian\'s addresses: it needs members:write and contacts:read.',
      test: problem(403, `
        pm.test('names the permission', function () {
            pm.expect(problem.detail).to.include('contacts:read');
        });`),
    }),
    request('Invite a guardian to the app (staff)', {
      method: 'POST', path: '/api/v1/members/{{importedMemberId}}/invitations',
      test: ok(201) + FORMATS + `
        pm.test('a code to type, its link, 14 days', function () {
            pm.expect(body.code).to.match(/^[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}$/);
            pm.expect(body.url).to.match(/^https?:\\/\\//);
            pm.expect(body.url.endsWith('/invite/' + body.code)).to.be.true;
            pm.expect(body.expires_at).to.match(RFC3339_UTC);
            const days = (Date.parse(body.expires_at) - Date.now()) / 86400000;
            pm.expect(days).to.be.within(13.9, 14.1);
        });
        pm.collectionVariables.set('invitationCode', body.code);`,
    }),
    request('Invite an unknown member → 404', {
      method: 'POST', path: '/api/v1/members/00000000-0000-7000-8000-000000000000/invitations',
      test: problem(404),
    }),
    request('Open an app session with the code (typed lower case, without dashes)', {
      method: 'POST', path: '/api/v1/app/session', auth: NOAUTH,
      pre: `
        pm.collectionVariables.set('typedCode', pm.collectionVariables.get('invitationCode').replace(/-/g, '').toLowerCase());`,
      json: '{\n  "code": "{{typedCode}}"\n}',
      test: ok(201) + appSession + `
        pm.test('the invited guardian, who sees their own addresses', function () {
            pm.expect(body.profile.id).to.eql(pm.collectionVariables.get('importedMemberId'));
            pm.expect(body.profile.name).to.eql('山田 花子');
            pm.expect(body.profile.status).to.eql('active');
            pm.expect(body.profile.emails.map(e => e.address)).to.eql(['hanako.yamada@example.jp', 'taro..papa@docomo.ne.jp']);
            pm.expect(body.profile.devices).to.eql([]);
        });
        pm.collectionVariables.set('guardianToken', body.access_token);`,
    }),
    request('The same code again → 401', {
      method: 'POST', path: '/api/v1/app/session', auth: NOAUTH,
      json: '{\n  "code": "{{invitationCode}}"\n}',
      test: problem(401),
    }),
    request('An unknown code → 401', {
      method: 'POST', path: '/api/v1/app/session', auth: NOAUTH,
      json: { code: 'ZZZZ-ZZZZ-ZZZZ' },
      test: problem(401),
    }),
    request('GET /app/me', {
      method: 'GET', path: '/api/v1/app/me', auth: bearer('guardianToken'),
      test: ok(200) + `
        pm.test('the guardian, unmasked, nothing of the school\\'s', function () {
            pm.expect(body.id).to.eql(pm.collectionVariables.get('importedMemberId'));
            pm.expect(body.org_name).to.eql('Postman School');
            pm.expect(body.name_kana).to.eql('ヤマダ ハナコ');
            pm.expect(body.student_name).to.eql('山田 太郎');
            pm.expect(body.emails).to.have.lengthOf(2);
            pm.expect(body).to.not.have.property('attributes');
            pm.expect(body).to.not.have.property('external_id');
            pm.expect(body).to.not.have.property('list_ids');
        });`,
    }),
    request('GET /app/me without credentials → 401', {
      method: 'GET', path: '/api/v1/app/me', auth: NOAUTH,
      test: problem(401),
    }),
    request('A staff token on /app/me → 401', {
      method: 'GET', path: '/api/v1/app/me',
      test: problem(401),
    }),
    request('The guardian token on /me → 401', {
      method: 'GET', path: '/api/v1/me', auth: bearer('guardianToken'),
      test: problem(401),
    }),
    request('The guardian token on the roster → 401', {
      method: 'GET', path: '/api/v1/members', auth: bearer('guardianToken'),
      test: problem(401),
    }),
    request('Change the own profile (an empty string clears)', {
      method: 'PATCH', path: '/api/v1/app/me', auth: bearer('guardianToken'),
      json: { name_kana: 'ヤマダ ハナ', relation: '' },
      test: ok(200) + `
        pm.test('only the fields present changed', function () {
            pm.expect(body.name_kana).to.eql('ヤマダ ハナ');
            pm.expect(body.relation).to.eql(null);
            pm.expect(body.name).to.eql('山田 花子');
            pm.expect(body.student_name).to.eql('山田 太郎');
        });`,
    }),
    request("The school's fields are not the guardian's → 422", {
      method: 'PATCH', path: '/api/v1/app/me', auth: bearer('guardianToken'),
      json: { attributes: { grade: '6' } },
      test: problem(422, `
        pm.test('names the field attributes', function () {
            pm.expect(problem.errors.map(e => e.field)).to.eql(['attributes']);
        });`),
    }),
    request('An empty name → 422', {
      method: 'PATCH', path: '/api/v1/app/me', auth: bearer('guardianToken'),
      json: { name: '' },
      test: problem(422, `
        pm.test('names the field name', function () {
            pm.expect(problem.errors.map(e => e.field)).to.eql(['name']);
        });`),
    }),
    request('Staff see the change; attributes and lists kept', {
      method: 'GET', path: '/api/v1/members/{{importedMemberId}}',
      test: ok(200) + `
        pm.test('changed by the guardian, the rest as imported', function () {
            pm.expect(body.name_kana).to.eql('ヤマダ ハナ');
            pm.expect(body.relation).to.eql(null);
            pm.expect(body.external_id).to.eql('C1001');
            pm.expect(body.attributes).to.eql({ grade: '1', class: 'A', club: 'サッカー部' });
            pm.expect(body.list_ids).to.have.lengthOf(2);
            pm.expect(body.emails.map(e => e.status)).to.eql(['active', 'active']);
        });`,
    }),
    request('Add an address (unconfirmed until its link is opened)', {
      method: 'POST', path: '/api/v1/app/me/emails', auth: bearer('guardianToken'),
      json: { address: 'hanako.mobile@ezweb.ne.jp' },
      test: ok(201) + `
        pm.test('the third address, unconfirmed', function () {
            pm.expect(body.emails).to.have.lengthOf(3);
            pm.expect(body.emails[2]).to.eql({ address: 'hanako.mobile@ezweb.ne.jp', status: 'unconfirmed' });
            pm.expect(body.emails[0].status).to.eql('active');
        });`,
    }),
    request('Add one of the own addresses again (other case) → 409', {
      method: 'POST', path: '/api/v1/app/me/emails', auth: bearer('guardianToken'),
      json: { address: 'Hanako.Yamada@example.jp' },
      test: problem(409, `
        pm.test('names the field address', function () {
            pm.expect(problem.errors.map(e => e.field)).to.eql(['address']);
        });`),
    }),
    request('Add something that is not an address → 422', {
      method: 'POST', path: '/api/v1/app/me/emails', auth: bearer('guardianToken'),
      json: { address: 'not an address' },
      test: problem(422, `
        pm.test('names the field address', function () {
            pm.expect(problem.errors.map(e => e.field)).to.eql(['address']);
        });`),
    }),
    request('Add a fourth address', {
      method: 'POST', path: '/api/v1/app/me/emails', auth: bearer('guardianToken'),
      json: { address: 'yamada.family@example.jp' },
      test: ok(201) + `
        pm.test('four addresses, the new one unconfirmed', function () {
            pm.expect(body.emails).to.have.lengthOf(4);
            pm.expect(body.emails[3]).to.eql({ address: 'yamada.family@example.jp', status: 'unconfirmed' });
        });`,
    }),
    request('A fifth address → 422', {
      method: 'POST', path: '/api/v1/app/me/emails', auth: bearer('guardianToken'),
      json: { address: 'fifth@example.jp' },
      test: problem(422, `
        pm.test('names the field address', function () {
            pm.expect(problem.errors.map(e => e.field)).to.eql(['address']);
        });`),
    }),
    request('Staff see which addresses are unconfirmed', {
      method: 'GET', path: '/api/v1/members/{{importedMemberId}}',
      test: ok(200) + `
        pm.test('two active, two unconfirmed', function () {
            pm.expect(body.emails.map(e => e.status)).to.eql(['active', 'active', 'unconfirmed', 'unconfirmed']);
        });`,
    }),
    request('Send the confirmation link again → 202', {
      method: 'POST', path: '/api/v1/app/me/emails/hanako.mobile@ezweb.ne.jp/confirmation', auth: bearer('guardianToken'),
      test: `
        pm.test('status is 202', function () {
            pm.response.to.have.status(202);
        });`,
    }),
    request('A confirmation link for a confirmed address → 404', {
      method: 'POST', path: '/api/v1/app/me/emails/hanako.yamada@example.jp/confirmation', auth: bearer('guardianToken'),
      test: problem(404),
    }),
    request('Remove an address', {
      method: 'DELETE', path: '/api/v1/app/me/emails/yamada.family@example.jp', auth: bearer('guardianToken'),
      test: noContent,
    }),
    request('Remove the same address again → 404', {
      method: 'DELETE', path: '/api/v1/app/me/emails/yamada.family@example.jp', auth: bearer('guardianToken'),
      test: problem(404),
    }),
    request('A made-up confirmation link → 404, a page saying it cannot be used', {
      method: 'GET', path: '/confirm-email/made-up-token-{{$timestamp}}', auth: NOAUTH,
      description: 'The real token travels only by e-mail (the outbox). Opening a real link shows a button that posts the confirmation (GET alone confirms nothing: mail scanners open links); a forged or used one gets this page.',
      test: `
        pm.test('status is 404', function () {
            pm.response.to.have.status(404);
        });
        pm.test('answer is text/html', function () {
            pm.expect(pm.response.headers.get('Content-Type')).to.match(/^text\\/html/);
        });
        pm.test('says the link cannot be used, echoes nothing', function () {
            pm.expect(pm.response.text()).to.include('使えません');
            pm.expect(pm.response.text()).to.not.include('made-up-token');
        });`,
    }),
    request('The address is still unconfirmed', {
      method: 'GET', path: '/api/v1/app/me', auth: bearer('guardianToken'),
      pre: `
        // Reset the counter of the device loop that follows.
        pm.collectionVariables.set('appDeviceCount', '0');`,
      test: ok(200) + `
        pm.test('three addresses, the added one unconfirmed', function () {
            pm.expect(body.emails.map(e => e.status)).to.eql(['active', 'active', 'unconfirmed']);
        });`,
    }),
    request('Register this phone (four times)', {
      method: 'POST', path: '/api/v1/app/me/devices', auth: bearer('guardianToken'),
      description: 'Runs four times (setNextRequest), each with a new token: a guardian holds up to four devices.',
      pre: `
        const n = Number(pm.collectionVariables.get('appDeviceCount') || '0') + 1;
        pm.collectionVariables.set('appDeviceCount', String(n));
        pm.collectionVariables.set('devicePlatform', n % 2 ? 'fcm' : 'apns');
        pm.collectionVariables.set('deviceToken', 'app-' + Date.now().toString(16) + '-' + Math.floor(Math.random() * 1e9).toString(16) + '-' + n);`,
      json: '{\n  "platform": "{{devicePlatform}}",\n  "token": "{{deviceToken}}",\n  "app_id": "jp.example.renrakumo"\n}',
      test: ok(201) + `
        pm.test('registered, the own token unmasked', function () {
            pm.expect(body.id).to.be.a('string').and.not.be.empty;
            pm.expect(body.platform).to.eql(pm.collectionVariables.get('devicePlatform'));
            pm.expect(body.token).to.eql(pm.collectionVariables.get('deviceToken'));
            pm.expect(body.app_id).to.eql('jp.example.renrakumo');
        });
        const n = Number(pm.collectionVariables.get('appDeviceCount'));
        if (n === 1) {
            pm.collectionVariables.set('appDeviceId', body.id);
        }
        if (n < 4) {
            pm.execution.setNextRequest(pm.info.requestName);
        }`,
    }),
    request('A fifth phone → 409', {
      method: 'POST', path: '/api/v1/app/me/devices', auth: bearer('guardianToken'),
      json: { platform: 'fcm', token: 'fifth-app-device-{{$timestamp}}' },
      test: problem(409, `
        pm.test('names the field devices', function () {
            pm.expect(problem.errors.map(e => e.field)).to.eql(['devices']);
        });`),
    }),
    request('A phone with a bad token → 422', {
      method: 'POST', path: '/api/v1/app/me/devices', auth: bearer('guardianToken'),
      json: { platform: 'apns', token: 'has spaces in it' },
      test: problem(422, `
        pm.test('names the field token', function () {
            pm.expect(problem.errors.map(e => e.field)).to.include('token');
        });`),
    }),
    request('Remove a phone', {
      method: 'DELETE', path: '/api/v1/app/me/devices/{{appDeviceId}}', auth: bearer('guardianToken'),
      test: noContent,
    }),
    request('Remove the same phone again → 404', {
      method: 'DELETE', path: '/api/v1/app/me/devices/{{appDeviceId}}', auth: bearer('guardianToken'),
      test: problem(404),
    }),
    request("Staff register a device for another guardian", {
      method: 'POST', path: '/api/v1/members/{{member2Id}}/devices',
      pre: `
        pm.collectionVariables.set('deviceToken', 'staff-' + Date.now().toString(16) + '-' + Math.floor(Math.random() * 1e9).toString(16));`,
      json: '{\n  "platform": "apns",\n  "token": "{{deviceToken}}"\n}',
      test: ok(201) + `
        pm.collectionVariables.set('otherDeviceId', body.id);`,
    }),
    request("Another guardian's device cannot be removed from the app → 404", {
      method: 'DELETE', path: '/api/v1/app/me/devices/{{otherDeviceId}}', auth: bearer('guardianToken'),
      test: problem(404),
    }),
    request('Three phones left', {
      method: 'GET', path: '/api/v1/app/me', auth: bearer('guardianToken'),
      test: ok(200) + `
        pm.test('three devices, without the removed one, tokens masked', function () {
            pm.expect(body.devices).to.have.lengthOf(3);
            body.devices.forEach(d => pm.expect(d.token).to.match(/^….{4}$/));
            pm.expect(body.devices.map(d => d.id)).to.not.include(pm.collectionVariables.get('appDeviceId'));
        });`,
    }),
    request('Give a list a join code', {
      method: 'PUT', path: '/api/v1/lists/{{listId}}/join-code',
      test: ok(200) + `
        pm.test('an 8-character code', function () {
            pm.expect(body.join_code).to.match(/^[0-9A-HJKMNP-TV-Z]{8}$/);
        });
        pm.collectionVariables.set('oldJoinCode', body.join_code);`,
    }),
    request('A new join code replaces the old one', {
      method: 'PUT', path: '/api/v1/lists/{{listId}}/join-code',
      test: ok(200) + `
        pm.test('another code', function () {
            pm.expect(body.join_code).to.match(/^[0-9A-HJKMNP-TV-Z]{8}$/);
            pm.expect(body.join_code).to.not.eql(pm.collectionVariables.get('oldJoinCode'));
        });
        pm.collectionVariables.set('joinCode', body.join_code);`,
    }),
    request('The list shows its join code', {
      method: 'GET', path: '/api/v1/lists/{{listId}}',
      test: ok(200) + `
        pm.test('the current code', function () {
            pm.expect(body.join_code).to.eql(pm.collectionVariables.get('joinCode'));
        });`,
    }),
    request('A join code for an unknown list → 404', {
      method: 'PUT', path: '/api/v1/lists/00000000-0000-7000-8000-000000000000/join-code',
      test: problem(404),
    }),
    request('Register with the old join code → 401', {
      method: 'POST', path: '/api/v1/app/register', auth: NOAUTH,
      json: '{\n  "join_code": "{{oldJoinCode}}",\n  "name": "古い コード"\n}',
      test: problem(401),
    }),
    request('Register in the app with the join code (typed lower case)', {
      method: 'POST', path: '/api/v1/app/register', auth: NOAUTH,
      pre: `
        pm.collectionVariables.set('typedJoinCode', pm.collectionVariables.get('joinCode').toLowerCase());`,
      json: '{\n  "join_code": "{{typedJoinCode}}",\n  "name": "小林 真理",\n  "student_name": "小林 悠真",\n  "relation": "母",\n  "email": "mari.kobayashi@example.jp"\n}',
      test: ok(201) + appSession + `
        pm.test('pending until staff approve; the address unconfirmed', function () {
            pm.expect(body.profile.name).to.eql('小林 真理');
            pm.expect(body.profile.student_name).to.eql('小林 悠真');
            pm.expect(body.profile.status).to.eql('pending');
            pm.expect(body.profile.emails).to.eql([{ address: 'mari.kobayashi@example.jp', status: 'unconfirmed' }]);
        });
        pm.collectionVariables.set('pendingMemberId', body.profile.id);
        pm.collectionVariables.set('pendingToken', body.access_token);`,
    }),
    request('Register without a name → 422', {
      method: 'POST', path: '/api/v1/app/register', auth: NOAUTH,
      json: '{\n  "join_code": "{{joinCode}}",\n  "name": ""\n}',
      test: problem(422, `
        pm.test('names the field name', function () {
            pm.expect(problem.errors.map(e => e.field)).to.eql(['name']);
        });`),
    }),
    request('The pending guardian uses the app', {
      method: 'GET', path: '/api/v1/app/me', auth: bearer('pendingToken'),
      test: ok(200) + `
        pm.test('pending', function () {
            pm.expect(body.id).to.eql(pm.collectionVariables.get('pendingMemberId'));
            pm.expect(body.status).to.eql('pending');
        });`,
    }),
    request('Staff find the pending guardian (status=pending)', {
      method: 'GET', path: '/api/v1/members', query: [['status', 'pending']],
      test: ok(200) + `
        pm.test('only the new guardian, in the list of the join code', function () {
            pm.expect(body.items.map(m => m.id)).to.eql([pm.collectionVariables.get('pendingMemberId')]);
            pm.expect(body.items[0].list_ids).to.eql([pm.collectionVariables.get('listId')]);
        });`,
    }),
    request('A pending guardian is approved, not suspended → 409', {
      method: 'POST', path: '/api/v1/members/{{pendingMemberId}}/suspend',
      test: problem(409, `
        pm.test('names the field status', function () {
            pm.expect(problem.errors.map(e => e.field)).to.include('status');
        });`),
    }),
    request('Approve the guardian (承認)', {
      method: 'POST', path: '/api/v1/members/{{pendingMemberId}}/approve',
      test: ok(200) + `
        pm.test('active', function () {
            pm.expect(body.id).to.eql(pm.collectionVariables.get('pendingMemberId'));
            pm.expect(body.status).to.eql('active');
        });`,
    }),
    request('The app sees the approval', {
      method: 'GET', path: '/api/v1/app/me', auth: bearer('pendingToken'),
      test: ok(200) + `
        pm.test('active', function () {
            pm.expect(body.status).to.eql('active');
        });`,
    }),
    request('Stop self-registration (remove the join code)', {
      method: 'DELETE', path: '/api/v1/lists/{{listId}}/join-code',
      test: noContent,
    }),
    request('The list has no join code', {
      method: 'GET', path: '/api/v1/lists/{{listId}}',
      test: ok(200) + `
        pm.test('join_code is null', function () {
            pm.expect(body.join_code).to.eql(null);
        });`,
    }),
    request('Register with the removed join code → 401', {
      method: 'POST', path: '/api/v1/app/register', auth: NOAUTH,
      json: '{\n  "join_code": "{{joinCode}}",\n  "name": "遅れた 保護者"\n}',
      test: problem(401),
    }),
    request('Removing the guardian ends their app session', {
      method: 'DELETE', path: '/api/v1/members/{{pendingMemberId}}',
      test: noContent,
    }),
    request("The removed guardian's app token → 401", {
      method: 'GET', path: '/api/v1/app/me', auth: bearer('pendingToken'),
      test: problem(401),
    }),
  ],
};

// Ends the guardian's app session: run last, after the inbox.
const appLogout = [
    request('App logout', {
      method: 'POST', path: '/api/v1/app/logout', auth: bearer('guardianToken'),
      test: noContent,
    }),
    request('After app logout the token → 401', {
      method: 'GET', path: '/api/v1/app/me', auth: bearer('guardianToken'),
      test: problem(401),
    }),
    request('App logout again → 401', {
      method: 'POST', path: '/api/v1/app/logout', auth: bearer('guardianToken'),
      test: problem(401),
    }),
];

// ---- Messages -----------------------------------------------------------------------------
// The roster as the folders above leave it: 鈴木 一郎 (S0002, grade 3) and 伊藤 結衣の母 (no
// attributes, no address) in {{listId}}; 山田 花子 (C1001, grade 1: two active addresses, one
// unconfirmed, three phones) and 髙橋 一郎 (C1002, grade 1, one address); 山﨑 由美 (grade 2).
// The server's delivery workers run during the collection and write e-mails to an outbox
// folder, so a sent message is `sending` or `sent` by the time it is looked at: the tests
// check what stays true either way (totals add up).
const SURVEY = {
  questions: [
    { text: '参加しますか', kind: 'single', options: ['参加する', '参加しない'], required: true },
    { text: 'お手伝いいただける係（複数可）', kind: 'multiple', options: ['受付', '片付け', '撮影'] },
    { text: '連絡事項', kind: 'text' },
  ],
};
const RESULTS_HEADER = 'name,student_name,external_id,read_at,acknowledged_at,answered_at,' + SURVEY.questions.map((q, i) => `Q${i + 1} ${q.text}`).join(',');
// The attachment fixture, read by newman from postman/ (its --working-dir); uploaded under a
// Japanese name so that the download's Content-Disposition carries it as filename*.
const PDF = { src: 'fixtures/letter.pdf', fileName: 'お便り_10月号.pdf' };
const PDF_SIZE = fs.statSync(path.join(__dirname, PDF.src)).size;
const HTML_FILE = { src: 'fixtures/notice.html' };
const UNKNOWN_ID = '00000000-0000-7000-8000-000000000000';

// A message as the API answers it (after ok()).
const SENT_STATES = `
  const SENT = ['sending', 'sent'];
`;
// The download of the PDF fixture (GET …/attachments/{id}), staff or app.
const pdfDownload = `
  pm.test('status is 200', function () {
      pm.response.to.have.status(200);
  });
  pm.test('answer is application/pdf, the bytes uploaded', function () {
      pm.expect(pm.response.headers.get('Content-Type')).to.match(/^application\\/pdf/);
      const bytes = pm.response.stream;
      pm.expect(bytes.length).to.eql(${PDF_SIZE});
      pm.expect(String.fromCharCode(bytes[0], bytes[1], bytes[2], bytes[3], bytes[4])).to.eql('%PDF-');
  });
  pm.test('Content-Disposition: attachment, the Japanese name as filename* (RFC 6266)', function () {
      const disposition = pm.response.headers.get('Content-Disposition');
      pm.expect(disposition).to.match(/^attachment;\\s*filename="[^"]+\\.pdf"/);
      pm.expect(disposition).to.include("filename*=UTF-8''" + encodeURIComponent('${PDF.fileName}'));
  });
`;
// The results as CSV: the BOM on the bytes (newman's text() drops it), lines on the text.
const resultsCsv = `
  pm.test('status is 200', function () {
      pm.response.to.have.status(200);
  });
  pm.test('answer is text/csv; charset=utf-8, a download named results.csv', function () {
      pm.expect(pm.response.headers.get('Content-Type')).to.match(/^text\\/csv/);
      pm.expect(pm.response.headers.get('Content-Type').toLowerCase()).to.include('charset=utf-8');
      pm.expect(pm.response.headers.get('Content-Disposition')).to.match(/^attachment;\\s*filename="results\\.csv"/);
  });
  const bytes = pm.response.stream;
  const lines = pm.response.text().replace(/^\\uFEFF/, '').split('\\r\\n');
  pm.test('starts with the UTF-8 BOM (EF BB BF), for Excel', function () {
      pm.expect([bytes[0], bytes[1], bytes[2]]).to.eql([0xEF, 0xBB, 0xBF]);
  });
  pm.test('header: the guardian, the times, one column per question; CRLF line ends', function () {
      pm.expect(lines[0]).to.eql('${RESULTS_HEADER}');
      pm.expect(lines[lines.length - 1]).to.eql('');
  });
  const rows = lines.slice(1, -1);
`;
// Delivery counts that add up to the jobs a send wrote, whatever the workers did meanwhile.
const deliveryTotals = (email, push) => `
  const e = body.deliveries.email;
  const p = body.deliveries.push;
  pm.test('delivery counts per channel, queued included', function () {
      ['queued', 'sent', 'failed', 'bounced'].forEach(k => pm.expect(e[k]).to.be.a('number').and.at.least(0));
      ['queued', 'sent', 'failed', 'invalid', 'skipped'].forEach(k => pm.expect(p[k]).to.be.a('number').and.at.least(0));
  });
  pm.test('${email} e-mail and ${push} push deliveries in all', function () {
      pm.expect(e.queued + e.sent + e.failed + e.bounced).to.eql(${email});
      pm.expect(p.queued + p.sent + p.failed + p.invalid + p.skipped).to.eql(${push});
  });
`;

const messages = {
  name: 'Messages',
  description: 'Composing: drafts with a survey and targets (lists, members, attributes), validation, edits, history with filters, copies and the preview of who a send would reach.',
  item: [
    request('Create a draft (survey, answer required, targets by list and attribute)', {
      method: 'POST', path: '/api/v1/messages',
      pre: `
        pm.collectionVariables.set('inAWeek', new Date(Date.now() + 7 * 24 * 3600 * 1000).toISOString());`,
      json: {
        subject: '運動会の開催について',
        body: '10月10日（土）に運動会を開催します。\n出欠とお手伝いの可否をお知らせください。',
        from_name: 'さくら小学校 教頭',
        answer_required: true,
        answer_deadline: '{{inAWeek}}',
        remind_after: 1440,
        survey: SURVEY,
        targets: { list_ids: ['{{listId}}'], attributes: { grade: ['3'] } },
      },
      test: ok(201) + FORMATS + `
        pm.test('a draft, as composed', function () {
            pm.expect(body.id).to.match(UUID_V7);
            pm.expect(body.status).to.eql('draft');
            pm.expect(body.subject).to.eql('運動会の開催について');
            pm.expect(body.from_name).to.eql('さくら小学校 教頭');
            pm.expect(body.priority).to.eql('normal');
            pm.expect(body.answer_required).to.eql(true);
            pm.expect(Date.parse(body.answer_deadline)).to.eql(Date.parse(pm.collectionVariables.get('inAWeek')));
            pm.expect(body.remind_after).to.eql(1440);
            pm.expect(body.channels).to.eql(['email', 'push']);
            pm.expect(body.copy_to_sender).to.eql(false);
            pm.expect(body.send_at).to.eql(null);
            pm.expect(body.sent_at).to.eql(null);
            pm.expect(body.recipient_count).to.eql(0);
            pm.expect(body.created_by).to.eql(pm.collectionVariables.get('adminId'));
            pm.expect(body.created_at).to.match(RFC3339_UTC);
        });
        pm.test('the survey: three questions, kinds and options kept', function () {
            pm.expect(body.survey.questions.map(q => q.kind)).to.eql(['single', 'multiple', 'text']);
            pm.expect(body.survey.questions[0].options).to.eql(['参加する', '参加しない']);
            pm.expect(body.survey.questions[0].required).to.eql(true);
            pm.expect(body.survey.questions[2].options).to.eql([]);
        });
        pm.test('targets: the list, narrowed by grade', function () {
            pm.expect(body.targets).to.eql({ list_ids: [pm.collectionVariables.get('listId')], member_ids: [], attributes: { grade: ['3'] } });
        });
        pm.collectionVariables.set('messageId', body.id);`,
    }),
    request('A subject over 100 characters → 422', {
      method: 'POST', path: '/api/v1/messages',
      json: { subject: '件'.repeat(101), body: '本文', targets: { list_ids: ['{{listId}}'] } },
      test: problem(422, `
        pm.test('names the field subject', function () {
            pm.expect(problem.errors.map(e => e.field)).to.eql(['subject']);
        });`),
    }),
    request('An 11th question → 422', {
      method: 'POST', path: '/api/v1/messages',
      json: {
        subject: '長いアンケート', body: '本文',
        survey: { questions: Array.from({ length: 11 }, (_, i) => ({ text: `質問${i + 1}`, kind: 'single', options: ['はい', 'いいえ'] })) },
      },
      test: problem(422, `
        pm.test('names the eleventh question', function () {
            pm.expect(problem.errors.map(e => e.field)).to.eql(['survey.questions[10]']);
        });`),
    }),
    request('An unknown list among the targets → 422', {
      method: 'POST', path: '/api/v1/messages',
      json: { subject: '宛先不明', body: '本文', targets: { list_ids: [UNKNOWN_ID] } },
      test: problem(422, `
        pm.test('names the list id', function () {
            pm.expect(problem.errors.map(e => e.field)).to.eql(['targets.list_ids[0]']);
        });`),
    }),
    request('Create a draft with an Idempotency-Key', {
      method: 'POST', path: '/api/v1/messages',
      headers: [{ key: 'Idempotency-Key', value: 'draft-{{listId}}' }],
      json: { subject: '再送されても一通', body: '本文' },
      test: ok(201) + `
        pm.test('the first answer is not a replay', function () {
            pm.expect(pm.response.headers.get('Idempotent-Replayed')).to.be.undefined;
        });
        pm.collectionVariables.set('idempotentMessageId', body.id);`,
    }),
    request('The same request again → the first answer, replayed', {
      method: 'POST', path: '/api/v1/messages',
      headers: [{ key: 'Idempotency-Key', value: 'draft-{{listId}}' }],
      json: { subject: '再送されても一通', body: '本文' },
      test: ok(201) + `
        pm.test('the same draft, marked as a replay', function () {
            pm.expect(body.id).to.eql(pm.collectionVariables.get('idempotentMessageId'));
            pm.expect(pm.response.headers.get('Idempotent-Replayed')).to.eql('true');
        });`,
    }),
    request('The same key with another request → 422', {
      method: 'POST', path: '/api/v1/messages',
      headers: [{ key: 'Idempotency-Key', value: 'draft-{{listId}}' }],
      json: { subject: '別の下書き', body: '本文' },
      test: problem(422, `
        pm.test('names the header Idempotency-Key', function () {
            pm.expect(problem.errors.map(e => e.field)).to.eql(['Idempotency-Key']);
        });`),
    }),
    request('Delete the replayed draft', {
      method: 'DELETE', path: '/api/v1/messages/{{idempotentMessageId}}',
      test: `
  pm.test('status is 204', function () {
      pm.response.to.have.status(204);
  });`,
    }),
    request('Get the draft', {
      method: 'GET', path: '/api/v1/messages/{{messageId}}',
      test: ok(200) + `
        pm.test('the draft', function () {
            pm.expect(body.id).to.eql(pm.collectionVariables.get('messageId'));
            pm.expect(body.status).to.eql('draft');
            pm.expect(body.survey.questions).to.have.lengthOf(3);
        });`,
    }),
    request('Edit the draft (the fields present replace)', {
      method: 'PATCH', path: '/api/v1/messages/{{messageId}}',
      json: { body: '10月10日（土）に運動会を開催します。\n雨天の場合は翌日に延期します。', from_name: 'さくら小学校 教頭 佐藤' },
      test: ok(200) + `
        pm.test('body and sender name changed, the rest kept', function () {
            pm.expect(body.body).to.include('雨天の場合は翌日に延期します。');
            pm.expect(body.from_name).to.eql('さくら小学校 教頭 佐藤');
            pm.expect(body.subject).to.eql('運動会の開催について');
            pm.expect(body.survey.questions).to.have.lengthOf(3);
            pm.expect(body.targets.attributes).to.eql({ grade: ['3'] });
            pm.expect(body.status).to.eql('draft');
        });
        pm.test('updated_at is not before created_at', function () {
            pm.expect(Date.parse(body.updated_at)).to.be.at.least(Date.parse(body.created_at));
        });`,
    }),
    request('Edit with an empty subject → 422', {
      method: 'PATCH', path: '/api/v1/messages/{{messageId}}',
      json: { subject: '  ' },
      test: problem(422, `
        pm.test('names the field subject', function () {
            pm.expect(problem.errors.map(e => e.field)).to.eql(['subject']);
        });`),
    }),
    request('Create a second draft (by attribute only, e-mail only)', {
      method: 'POST', path: '/api/v1/messages',
      json: {
        subject: '保護者会のお知らせ',
        body: '1年生の保護者会を開きます。',
        channels: ['email'],
        targets: { attributes: { grade: ['1'] } },
      },
      test: ok(201) + `
        pm.test('a draft for grade 1, by e-mail', function () {
            pm.expect(body.status).to.eql('draft');
            pm.expect(body.channels).to.eql(['email']);
            pm.expect(body.answer_required).to.eql(false);
            pm.expect(body.survey).to.eql(null);
            pm.expect(body.targets).to.eql({ list_ids: [], member_ids: [], attributes: { grade: ['1'] } });
        });
        pm.collectionVariables.set('message2Id', body.id);`,
    }),
    request('History: drafts (status=draft), newest first', {
      method: 'GET', path: '/api/v1/messages', query: [['status', 'draft']],
      test: ok(200) + `
        pm.test('the two drafts, newest first', function () {
            pm.expect(body.items.map(m => m.id)).to.eql([pm.collectionVariables.get('message2Id'), pm.collectionVariables.get('messageId')]);
            pm.expect(body.next_cursor == null).to.be.true;
        });`,
    }),
    request('History: search subject and body (q)', {
      method: 'GET', path: '/api/v1/messages', query: [['q', '雨天']],
      test: ok(200) + `
        pm.test('only the message whose body matches', function () {
            pm.expect(body.items.map(m => m.id)).to.eql([pm.collectionVariables.get('messageId')]);
        });`,
    }),
    request('History: by sender (sender=the admin)', {
      method: 'GET', path: '/api/v1/messages', query: [['sender', '{{adminId}}']],
      test: ok(200) + `
        pm.test('both drafts are the admin\\'s', function () {
            pm.expect(body.items.map(m => m.id)).to.include.members([pm.collectionVariables.get('messageId'), pm.collectionVariables.get('message2Id')]);
            body.items.forEach(m => pm.expect(m.created_by).to.eql(pm.collectionVariables.get('adminId')));
        });`,
    }),
    request('History: by another sender → none', {
      method: 'GET', path: '/api/v1/messages', query: [['sender', '{{senderId}}']],
      test: ok(200) + `
        pm.test('the deleted sender composed nothing', function () {
            pm.expect(body.items).to.eql([]);
        });`,
    }),
    request('History with an unknown status → 422', {
      method: 'GET', path: '/api/v1/messages', query: [['status', 'archived']],
      test: problem(422, `
        pm.test('names the parameter status', function () {
            pm.expect(problem.errors.map(e => e.field)).to.include('status');
        });`),
    }),
    request('Preview: who the first draft would reach', {
      method: 'GET', path: '/api/v1/messages/{{messageId}}/preview',
      test: ok(200) + `
        pm.test('鈴木 一郎 only (grade 3 of the list): one address, one phone', function () {
            pm.expect(body).to.eql({ recipients: 1, email: 1, push: 1 });
        });`,
    }),
    request('Preview: grade 1 by e-mail', {
      method: 'GET', path: '/api/v1/messages/{{message2Id}}/preview',
      test: ok(200) + `
        pm.test('two guardians, three receiving addresses (not the unconfirmed one), no push', function () {
            pm.expect(body).to.eql({ recipients: 2, email: 3, push: 0 });
        });`,
    }),
    request('Copy the first draft', {
      method: 'POST', path: '/api/v1/messages/{{messageId}}/copy',
      test: ok(201) + `
        pm.test('a new draft with the same content', function () {
            pm.expect(body.id).to.not.eql(pm.collectionVariables.get('messageId'));
            pm.expect(body.status).to.eql('draft');
            pm.expect(body.subject).to.eql('運動会の開催について');
            pm.expect(body.from_name).to.eql('さくら小学校 教頭 佐藤');
            pm.expect(body.survey.questions).to.have.lengthOf(3);
            pm.expect(body.targets.attributes).to.eql({ grade: ['3'] });
            pm.expect(Date.parse(body.answer_deadline)).to.eql(Date.parse(pm.collectionVariables.get('inAWeek')));
        });
        pm.collectionVariables.set('copyId', body.id);`,
    }),
    request('Copy an unknown message → 404', {
      method: 'POST', path: `/api/v1/messages/${UNKNOWN_ID}/copy`,
      test: problem(404),
    }),
    request('Get an unknown message → 404', {
      method: 'GET', path: `/api/v1/messages/${UNKNOWN_ID}`,
      test: problem(404),
    }),
  ],
};

const attachmentsFolder = {
  name: 'Attachments',
  description: 'Files of a message (multipart upload, at most 5 and 1 MiB per message; the type is recognised from the content): list, download, delete. The PDF comes from postman/fixtures/.',
  item: [
    request('Upload a PDF (multipart)', {
      method: 'POST', path: '/api/v1/messages/{{messageId}}/attachments',
      formdata: [{ key: 'file', ...PDF }],
      test: ok(201) + FORMATS + `
        pm.test('stored with its name, the type recognised, its size', function () {
            pm.expect(body.id).to.match(UUID_V7);
            pm.expect(body.filename).to.eql('${PDF.fileName}');
            pm.expect(body.content_type).to.eql('application/pdf');
            pm.expect(body.size).to.eql(${PDF_SIZE});
            pm.expect(body.created_at).to.match(RFC3339_UTC);
        });
        pm.collectionVariables.set('attachmentId', body.id);`,
    }),
    request('Upload an HTML page → 415', {
      method: 'POST', path: '/api/v1/messages/{{messageId}}/attachments',
      formdata: [{ key: 'file', ...HTML_FILE }],
      test: problem(415, `
        pm.test('names the field file', function () {
            pm.expect(problem.errors.map(e => e.field)).to.eql(['file']);
        });`),
    }),
    request('Upload JSON instead of multipart → 415', {
      method: 'POST', path: '/api/v1/messages/{{messageId}}/attachments',
      json: { file: 'not a file' },
      test: problem(415),
    }),
    request('Upload the PDF a second time', {
      method: 'POST', path: '/api/v1/messages/{{messageId}}/attachments',
      formdata: [{ key: 'file', ...PDF }],
      test: ok(201) + `
        pm.test('another attachment', function () {
            pm.expect(body.id).to.not.eql(pm.collectionVariables.get('attachmentId'));
        });
        pm.collectionVariables.set('attachment2Id', body.id);`,
    }),
    request('List the attachments', {
      method: 'GET', path: '/api/v1/messages/{{messageId}}/attachments',
      test: ok(200) + `
        pm.test('both files, oldest first, one page', function () {
            pm.expect(body.items.map(a => a.id)).to.eql([pm.collectionVariables.get('attachmentId'), pm.collectionVariables.get('attachment2Id')]);
            pm.expect(body.next_cursor == null).to.be.true;
        });`,
    }),
    request('Download an attachment', {
      method: 'GET', path: '/api/v1/messages/{{messageId}}/attachments/{{attachmentId}}',
      test: pdfDownload,
    }),
    request('Delete an attachment', {
      method: 'DELETE', path: '/api/v1/messages/{{messageId}}/attachments/{{attachment2Id}}',
      test: noContent,
    }),
    request('Delete the same attachment again → 404', {
      method: 'DELETE', path: '/api/v1/messages/{{messageId}}/attachments/{{attachment2Id}}',
      test: problem(404),
    }),
    request('One attachment left', {
      method: 'GET', path: '/api/v1/messages/{{messageId}}/attachments',
      test: ok(200) + `
        pm.test('the first file only', function () {
            pm.expect(body.items.map(a => a.id)).to.eql([pm.collectionVariables.get('attachmentId')]);
        });`,
    }),
    request('Attachments of an unknown message → 404', {
      method: 'GET', path: `/api/v1/messages/${UNKNOWN_ID}/attachments`,
      test: problem(404),
    }),
  ],
};

const sending = {
  name: 'Sending',
  description: 'Send now (delivery jobs are written before the answer; workers deliver them), schedule, reschedule and cancel; what a sent message no longer allows; progress, recipients, survey results (JSON and CSV) and resending.',
  item: [
    request('Send now → 202', {
      method: 'POST', path: '/api/v1/messages/{{messageId}}/send',
      test: `
        pm.test('status is 202', function () {
            pm.response.to.have.status(202);
        });
        const body = pm.response.json();
        pm.test('sending, to one guardian', function () {
            pm.expect(body.status).to.eql('sending');
            pm.expect(body.recipient_count).to.eql(1);
            pm.expect(body.send_at).to.eql(null);
        });`,
    }),
    request('The message went out', {
      method: 'GET', path: '/api/v1/messages/{{messageId}}',
      test: ok(200) + FORMATS + SENT_STATES + `
        pm.test('sending or sent, with its start and recipient count', function () {
            pm.expect(SENT).to.include(body.status);
            pm.expect(body.sent_at).to.match(RFC3339_UTC);
            pm.expect(body.send_at).to.eql(null);
            pm.expect(body.recipient_count).to.eql(1);
        });`,
    }),
    request('Send it again → 409', {
      method: 'POST', path: '/api/v1/messages/{{messageId}}/send',
      test: problem(409, `
        pm.test('names the field status', function () {
            pm.expect(problem.errors.map(e => e.field)).to.eql(['status']);
        });`),
    }),
    request('Edit after sending → 409', {
      method: 'PATCH', path: '/api/v1/messages/{{messageId}}',
      json: { subject: '運動会の開催について（訂正）' },
      test: problem(409, `
        pm.test('names the field status', function () {
            pm.expect(problem.errors.map(e => e.field)).to.eql(['status']);
        });`),
    }),
    request('Delete a sent message → 409', {
      method: 'DELETE', path: '/api/v1/messages/{{messageId}}',
      test: problem(409),
    }),
    request('Attach to a sent message → 409', {
      method: 'POST', path: '/api/v1/messages/{{messageId}}/attachments',
      formdata: [{ key: 'file', ...PDF }],
      test: problem(409, `
        pm.test('names the field status', function () {
            pm.expect(problem.errors.map(e => e.field)).to.eql(['status']);
        });`),
    }),
    request('Remove an attachment of a sent message → 409', {
      method: 'DELETE', path: '/api/v1/messages/{{messageId}}/attachments/{{attachmentId}}',
      test: problem(409),
    }),
    request('Cancel a sent message → 409', {
      method: 'POST', path: '/api/v1/messages/{{messageId}}/cancel',
      test: problem(409),
    }),
    request('Stats: recipients and deliveries', {
      method: 'GET', path: '/api/v1/messages/{{messageId}}/stats',
      test: ok(200) + SENT_STATES + `
        pm.test('one guardian, nobody has read or answered yet', function () {
            pm.expect(SENT).to.include(body.status);
            pm.expect(body.recipients).to.eql(1);
            pm.expect(body.read).to.eql(0);
            pm.expect(body.acknowledged).to.eql(0);
            pm.expect(body.answered).to.eql(0);
        });` + deliveryTotals(1, 1),
    }),
    request('Recipients who have not acknowledged (status=unacknowledged)', {
      method: 'GET', path: '/api/v1/messages/{{messageId}}/recipients', query: [['status', 'unacknowledged']],
      test: ok(200) + `
        const r = body.items[0];
        pm.test('鈴木 一郎, nothing read, acknowledged or answered', function () {
            pm.expect(body.items).to.have.lengthOf(1);
            pm.expect(r.member_id).to.eql(pm.collectionVariables.get('member2Id'));
            pm.expect(r.name).to.eql('鈴木 一郎');
            pm.expect(r.read_at).to.eql(null);
            pm.expect(r.acknowledged_at).to.eql(null);
            pm.expect(r.answered_at).to.eql(null);
            pm.expect(r.answers).to.eql([]);
        });
        pm.test('one delivery per address and phone: the address unmasked (contacts:read), the token masked', function () {
            const email = r.deliveries.find(d => d.channel === 'email');
            const push = r.deliveries.find(d => d.channel === 'push');
            pm.expect(r.deliveries).to.have.lengthOf(2);
            pm.expect(email.to).to.eql('ichiro.suzuki@example.jp');
            pm.expect(['queued', 'sent']).to.include(email.state);
            pm.expect(push.platform).to.eql('apns');
            pm.expect(push.to).to.match(/^….{4}$/);
            pm.expect(['queued', 'sent', 'failed', 'invalid', 'skipped']).to.include(push.state);
        });`,
    }),
    request('Recipients with an unknown status → 422', {
      method: 'GET', path: '/api/v1/messages/{{messageId}}/recipients', query: [['status', 'lost']],
      test: problem(422, `
        pm.test('names the parameter status', function () {
            pm.expect(problem.errors.map(e => e.field)).to.eql(['status']);
        });`),
    }),
    request('Survey results (JSON): nothing answered yet', {
      method: 'GET', path: '/api/v1/messages/{{messageId}}/results',
      test: ok(200) + `
        pm.test('one recipient, no answers', function () {
            pm.expect(body.recipients).to.eql(1);
            pm.expect(body.answered).to.eql(0);
        });
        pm.test('every question with its options counted at 0', function () {
            pm.expect(body.questions.map(q => q.kind)).to.eql(['single', 'multiple', 'text']);
            pm.expect(body.questions[0].text).to.eql('参加しますか');
            pm.expect(body.questions[0].options).to.eql([{ option: '参加する', count: 0 }, { option: '参加しない', count: 0 }]);
            pm.expect(body.questions[1].options.map(o => o.count)).to.eql([0, 0, 0]);
            pm.expect(body.questions[2].texts).to.eql([]);
            body.questions.forEach(q => pm.expect(q.answered).to.eql(0));
        });`,
    }),
    request('Survey results as CSV (format=csv)', {
      method: 'GET', path: '/api/v1/messages/{{messageId}}/results', query: [['format', 'csv']],
      test: resultsCsv + `
        pm.test('one row: the guardian, nothing read or answered', function () {
            pm.expect(rows).to.eql(['鈴木 一郎,鈴木 翔太,S0002,,,,,,']);
        });`,
    }),
    request('Results in another format → 422', {
      method: 'GET', path: '/api/v1/messages/{{messageId}}/results', query: [['format', 'xlsx']],
      test: problem(422, `
        pm.test('names the parameter format', function () {
            pm.expect(problem.errors.map(e => e.field)).to.eql(['format']);
        });`),
    }),
    request('Resend to those who have not answered → 202', {
      method: 'POST', path: '/api/v1/messages/{{messageId}}/resend',
      json: { to: 'unanswered' },
      test: `
        pm.test('status is 202', function () {
            pm.response.to.have.status(202);
        });
        const body = pm.response.json();
        pm.test('sending again, to the one guardian', function () {
            pm.expect(body.status).to.eql('sending');
            pm.expect(body.recipient_count).to.eql(1);
        });`,
    }),
    request('The resend added deliveries', {
      method: 'GET', path: '/api/v1/messages/{{messageId}}/stats',
      test: ok(200) + deliveryTotals(2, 2),
    }),
    request('Resend to nobody in particular → 422', {
      method: 'POST', path: '/api/v1/messages/{{messageId}}/resend',
      json: { to: 'everyone' },
      test: problem(422, `
        pm.test('names the field to', function () {
            pm.expect(problem.errors.map(e => e.field)).to.eql(['to']);
        });`),
    }),
    request('Resend a draft → 409', {
      method: 'POST', path: '/api/v1/messages/{{message2Id}}/resend',
      json: { to: 'unacknowledged' },
      test: problem(409),
    }),
    request('Schedule the second draft (send_at tomorrow) → 202', {
      method: 'POST', path: '/api/v1/messages/{{message2Id}}/send',
      pre: `
        pm.collectionVariables.set('sendAt', new Date(Date.now() + 24 * 3600 * 1000).toISOString());`,
      json: '{\n  "send_at": "{{sendAt}}"\n}',
      test: `
        pm.test('status is 202', function () {
            pm.response.to.have.status(202);
        });
        const body = pm.response.json();
        pm.test('scheduled, for the two grade-1 guardians as the roster stands', function () {
            pm.expect(body.status).to.eql('scheduled');
            pm.expect(body.recipient_count).to.eql(2);
            pm.expect(Date.parse(body.send_at)).to.eql(Date.parse(pm.collectionVariables.get('sendAt')));
        });`,
    }),
    request('The scheduled message', {
      method: 'GET', path: '/api/v1/messages/{{message2Id}}',
      test: ok(200) + `
        pm.test('scheduled, not sent', function () {
            pm.expect(body.status).to.eql('scheduled');
            pm.expect(Date.parse(body.send_at)).to.eql(Date.parse(pm.collectionVariables.get('sendAt')));
            pm.expect(body.sent_at).to.eql(null);
        });`,
    }),
    request('A scheduled message can still be edited', {
      method: 'PATCH', path: '/api/v1/messages/{{message2Id}}',
      json: { subject: '保護者会のお知らせ（会場変更）' },
      test: ok(200) + `
        pm.test('changed, still scheduled for the same time', function () {
            pm.expect(body.subject).to.eql('保護者会のお知らせ（会場変更）');
            pm.expect(body.status).to.eql('scheduled');
            pm.expect(Date.parse(body.send_at)).to.eql(Date.parse(pm.collectionVariables.get('sendAt')));
        });`,
    }),
    request('Reschedule (send again with another send_at) → 202', {
      method: 'POST', path: '/api/v1/messages/{{message2Id}}/send',
      pre: `
        pm.collectionVariables.set('sendAt', new Date(Date.now() + 2 * 24 * 3600 * 1000).toISOString());`,
      json: '{\n  "send_at": "{{sendAt}}"\n}',
      test: `
        pm.test('status is 202', function () {
            pm.response.to.have.status(202);
        });
        const body = pm.response.json();
        pm.test('scheduled for the new time', function () {
            pm.expect(body.status).to.eql('scheduled');
            pm.expect(Date.parse(body.send_at)).to.eql(Date.parse(pm.collectionVariables.get('sendAt')));
        });`,
    }),
    request('History: scheduled messages (status=scheduled)', {
      method: 'GET', path: '/api/v1/messages', query: [['status', 'scheduled']],
      test: ok(200) + `
        pm.test('the rescheduled message, at its new time', function () {
            pm.expect(body.items.map(m => m.id)).to.eql([pm.collectionVariables.get('message2Id')]);
            pm.expect(Date.parse(body.items[0].send_at)).to.eql(Date.parse(pm.collectionVariables.get('sendAt')));
        });`,
    }),
    request('Cancel the scheduled message', {
      method: 'POST', path: '/api/v1/messages/{{message2Id}}/cancel',
      test: ok(200) + `
        pm.test('cancelled, never sent', function () {
            pm.expect(body.id).to.eql(pm.collectionVariables.get('message2Id'));
            pm.expect(body.status).to.eql('cancelled');
            pm.expect(body.sent_at).to.eql(null);
        });`,
    }),
    request('Cancel it again → 409', {
      method: 'POST', path: '/api/v1/messages/{{message2Id}}/cancel',
      test: problem(409, `
        pm.test('names the field status', function () {
            pm.expect(problem.errors.map(e => e.field)).to.eql(['status']);
        });`),
    }),
    request('Send a cancelled message → 409', {
      method: 'POST', path: '/api/v1/messages/{{message2Id}}/send',
      test: problem(409),
    }),
    request('Edit a cancelled message → 409', {
      method: 'PATCH', path: '/api/v1/messages/{{message2Id}}',
      json: { subject: 'もう送らない' },
      test: problem(409),
    }),
    request('Create a draft without targets', {
      method: 'POST', path: '/api/v1/messages',
      json: { subject: '下書き', body: 'あとで宛先を決める' },
      test: ok(201) + `
        pm.test('a draft without targets', function () {
            pm.expect(body.status).to.eql('draft');
            pm.expect(body.targets).to.eql({ list_ids: [], member_ids: [], attributes: {} });
        });
        pm.collectionVariables.set('draftId', body.id);`,
    }),
    request('Send a draft without targets → 422', {
      method: 'POST', path: '/api/v1/messages/{{draftId}}/send',
      test: problem(422, `
        pm.test('names the field targets', function () {
            pm.expect(problem.errors.map(e => e.field)).to.eql(['targets']);
        });`),
    }),
    request('Copy the cancelled message into a draft', {
      method: 'POST', path: '/api/v1/messages/{{message2Id}}/copy',
      test: ok(201) + `
        pm.test('a new draft, unscheduled', function () {
            pm.expect(body.status).to.eql('draft');
            pm.expect(body.subject).to.eql('保護者会のお知らせ（会場変更）');
            pm.expect(body.send_at).to.eql(null);
        });
        pm.collectionVariables.set('copy2Id', body.id);`,
    }),
    request('Delete a draft', {
      method: 'DELETE', path: '/api/v1/messages/{{copy2Id}}',
      test: noContent,
    }),
    request('Delete the same draft again → 404', {
      method: 'DELETE', path: '/api/v1/messages/{{copy2Id}}',
      test: problem(404),
    }),
    request('Bulk-delete drafts (others are left alone)', {
      method: 'POST', path: '/api/v1/messages/bulk-delete',
      json: { ids: ['{{copyId}}', '{{draftId}}', '{{messageId}}', '{{message2Id}}'] },
      test: ok(200) + `
        pm.test('the two drafts deleted; the sent and the cancelled message kept', function () {
            pm.expect(body.deleted).to.eql(2);
        });`,
    }),
    request('The bulk-deleted draft is gone → 404', {
      method: 'GET', path: '/api/v1/messages/{{copyId}}',
      test: problem(404),
    }),
    request('History: no drafts left, sent and cancelled kept', {
      method: 'GET', path: '/api/v1/messages',
      test: ok(200) + SENT_STATES + `
        pm.test('the sent message and the cancelled one', function () {
            pm.expect(body.items.map(m => m.id)).to.eql([pm.collectionVariables.get('message2Id'), pm.collectionVariables.get('messageId')]);
            pm.expect(body.items[0].status).to.eql('cancelled');
            pm.expect(SENT).to.include(body.items[1].status);
        });`,
    }),
    request('Bulk-delete nothing → 422', {
      method: 'POST', path: '/api/v1/messages/bulk-delete',
      json: { ids: [] },
      test: problem(422, `
        pm.test('names the field ids', function () {
            pm.expect(problem.errors.map(e => e.field)).to.eql(['ids']);
        });`),
    }),
  ],
};

// A personal link that looks real: the ids of the sent message and its guardian, but a tag
// that is not the server's (the real one travels only by e-mail).
const forgeReceiptToken = `
  const cryptoJs = require('crypto-js');
  const hex = (pm.collectionVariables.get('messageId') + pm.collectionVariables.get('member2Id')).replace(/-/g, '') + '00'.repeat(16);
  const token = cryptoJs.enc.Base64.stringify(cryptoJs.enc.Hex.parse(hex)).replace(/\\+/g, '-').replace(/\\//g, '_').replace(/=+$/, '');
  pm.collectionVariables.set('forgedToken', token);
`;
const notFoundPage = `
  pm.test('status is 404', function () {
      pm.response.to.have.status(404);
  });
  pm.test('answer is text/html (a page for the phone, not problem+json)', function () {
      pm.expect(pm.response.headers.get('Content-Type')).to.match(/^text\\/html/);
  });
  pm.test('says the link is not valid, echoes nothing', function () {
      pm.expect(pm.response.text()).to.include('このリンクは無効です');
      pm.expect(pm.response.text()).to.not.include(pm.collectionVariables.get('forgedToken'));
  });
`;

const receiptsFolder = {
  name: 'Personal link (receipts)',
  description: 'What a guardian opens from the e-mail: the page /r/{token} and the same as JSON under /api/v1/receipts/{token}. The token is only in the e-mail (the server\'s outbox), so the collection checks that forged links answer 404 and change nothing; tests/api/receipts.rs covers real links.',
  item: [
    request('A made-up link (JSON) → 404', {
      method: 'GET', path: '/api/v1/receipts/not-a-real-link', auth: NOAUTH,
      test: problem(404),
    }),
    request('A forged link for a real message and guardian (JSON) → 404', {
      method: 'GET', path: '/api/v1/receipts/{{forgedToken}}', auth: NOAUTH,
      pre: forgeReceiptToken,
      test: problem(404),
    }),
    request('Acknowledge with a forged link → 404', {
      method: 'POST', path: '/api/v1/receipts/{{forgedToken}}/ack', auth: NOAUTH,
      test: problem(404),
    }),
    request('Answer with a forged link → 404', {
      method: 'PUT', path: '/api/v1/receipts/{{forgedToken}}/answers', auth: NOAUTH,
      json: { answers: [{ question: 0, choices: [0] }] },
      test: problem(404),
    }),
    request('The page of a forged link → 404 page', {
      method: 'GET', path: '/r/{{forgedToken}}', auth: NOAUTH,
      test: notFoundPage,
    }),
    request('The form post of a forged link (ack) → 404 page', {
      method: 'POST', path: '/r/{{forgedToken}}/ack', auth: NOAUTH,
      form: [['csrf', 'x']],
      test: notFoundPage,
    }),
    request('The form post of a forged link (answers) → 404 page', {
      method: 'POST', path: '/r/{{forgedToken}}/answers', auth: NOAUTH,
      form: [['csrf', 'x'], ['q0', '0']],
      test: notFoundPage,
    }),
    request('An attachment through a forged link → 404', {
      method: 'GET', path: '/r/{{forgedToken}}/attachments/{{attachmentId}}', auth: NOAUTH,
      test: problem(404),
    }),
    request('The forged link changed nothing', {
      method: 'GET', path: '/api/v1/messages/{{messageId}}/stats',
      test: ok(200) + `
        pm.test('still unread, unacknowledged, unanswered', function () {
            pm.expect(body.read).to.eql(0);
            pm.expect(body.acknowledged).to.eql(0);
            pm.expect(body.answered).to.eql(0);
        });`,
    }),
  ],
};

const inbox = {
  name: 'Guardian app inbox',
  description: 'A message to the guardian signed in to the app (the invitation above): the inbox with its unread count, reading, acknowledging, answering (checked against the survey), attachments; then what staff see of it. Ends the app session.',
  item: [
    request('Compose a message to the app guardian (targets.member_ids)', {
      method: 'POST', path: '/api/v1/messages',
      json: {
        subject: '遠足の出欠について',
        body: '5月20日（水）に遠足に行きます。持ち物は添付のお便りをご覧ください。',
        from_name: '1年A組 担任',
        answer_required: true,
        answer_deadline: '{{inAWeek}}',
        survey: SURVEY,
        targets: { member_ids: ['{{importedMemberId}}'] },
      },
      test: ok(201) + `
        pm.test('a draft to one member', function () {
            pm.expect(body.status).to.eql('draft');
            pm.expect(body.targets.member_ids).to.eql([pm.collectionVariables.get('importedMemberId')]);
        });
        pm.collectionVariables.set('inboxMessageId', body.id);`,
    }),
    request('Preview: two addresses and three phones', {
      method: 'GET', path: '/api/v1/messages/{{inboxMessageId}}/preview',
      test: ok(200) + `
        pm.test('山田 花子: the unconfirmed address does not count', function () {
            pm.expect(body).to.eql({ recipients: 1, email: 2, push: 3 });
        });`,
    }),
    request('Attach the PDF', {
      method: 'POST', path: '/api/v1/messages/{{inboxMessageId}}/attachments',
      formdata: [{ key: 'file', ...PDF }],
      test: ok(201) + `
        pm.collectionVariables.set('inboxAttachmentId', body.id);`,
    }),
    request('Send it → 202', {
      method: 'POST', path: '/api/v1/messages/{{inboxMessageId}}/send',
      test: `
        pm.test('status is 202', function () {
            pm.response.to.have.status(202);
        });
        const body = pm.response.json();
        pm.test('sending, to one guardian', function () {
            pm.expect(body.status).to.eql('sending');
            pm.expect(body.recipient_count).to.eql(1);
        });`,
    }),
    request('The inbox: one unread message', {
      method: 'GET', path: '/api/v1/app/messages', auth: bearer('guardianToken'),
      test: ok(200) + FORMATS + `
        pm.test('only the message sent to this guardian, unread', function () {
            pm.expect(body.unread_count).to.eql(1);
            pm.expect(body.items).to.have.lengthOf(1);
            const m = body.items[0];
            pm.expect(m.id).to.eql(pm.collectionVariables.get('inboxMessageId'));
            pm.expect(m.subject).to.eql('遠足の出欠について');
            pm.expect(m.priority).to.eql('normal');
            pm.expect(m.answer_required).to.eql(true);
            pm.expect(m.sent_at).to.match(RFC3339_UTC);
            pm.expect(m.read_at).to.eql(null);
            pm.expect(m.acknowledged_at).to.eql(null);
            pm.expect(m.answered_at).to.eql(null);
        });
        pm.test('last page', function () {
            pm.expect(body.next_cursor == null).to.be.true;
        });`,
    }),
    request('Open the message (records it as read)', {
      method: 'GET', path: '/api/v1/app/messages/{{inboxMessageId}}', auth: bearer('guardianToken'),
      test: ok(200) + FORMATS + `
        pm.test('the message, for this guardian, read now', function () {
            pm.expect(body.name).to.eql('山田 花子');
            pm.expect(body.read_at).to.match(RFC3339_UTC);
            pm.expect(body.acknowledged_at).to.eql(null);
            pm.expect(body.answered_at).to.eql(null);
            pm.expect(body.answers).to.eql([]);
            pm.expect(body.message.id).to.eql(pm.collectionVariables.get('inboxMessageId'));
            pm.expect(body.message.org_name).to.eql('Postman School');
            pm.expect(body.message.from_name).to.eql('1年A組 担任');
            pm.expect(body.message.survey.questions).to.have.lengthOf(3);
        });
        pm.test('the attachment, downloadable through the app', function () {
            const a = body.message.attachments;
            pm.expect(a).to.have.lengthOf(1);
            pm.expect(a[0].id).to.eql(pm.collectionVariables.get('inboxAttachmentId'));
            pm.expect(a[0].filename).to.eql('${PDF.fileName}');
            pm.expect(a[0].content_type).to.eql('application/pdf');
            pm.expect(a[0].url.endsWith('/api/v1/app/messages/' + pm.collectionVariables.get('inboxMessageId') + '/attachments/' + a[0].id)).to.be.true;
        });`,
    }),
    request('The inbox: nothing unread', {
      method: 'GET', path: '/api/v1/app/messages', auth: bearer('guardianToken'),
      test: ok(200) + `
        pm.test('unread_count 0, the message read', function () {
            pm.expect(body.unread_count).to.eql(0);
            pm.expect(body.items[0].read_at).to.be.a('string');
        });`,
    }),
    request('Acknowledge (確認)', {
      method: 'POST', path: '/api/v1/app/messages/{{inboxMessageId}}/ack', auth: bearer('guardianToken'),
      test: ok(200) + FORMATS + `
        pm.test('acknowledged, not answered', function () {
            pm.expect(body.acknowledged_at).to.match(RFC3339_UTC);
            pm.expect(body.answered_at).to.eql(null);
        });
        pm.collectionVariables.set('acknowledgedAt', body.acknowledged_at);`,
    }),
    request('Acknowledge again (idempotent)', {
      method: 'POST', path: '/api/v1/app/messages/{{inboxMessageId}}/ack', auth: bearer('guardianToken'),
      test: ok(200) + `
        pm.test('the first acknowledgement stands', function () {
            pm.expect(body.acknowledged_at).to.eql(pm.collectionVariables.get('acknowledgedAt'));
        });`,
    }),
    request('Answers that do not fit the survey → 422', {
      method: 'PUT', path: '/api/v1/app/messages/{{inboxMessageId}}/answers', auth: bearer('guardianToken'),
      json: { answers: [{ question: 0, choices: [0, 1] }, { question: 5, choices: [0] }] },
      test: problem(422, `
        pm.test('two choices for a single-choice question first, then the unknown question', function () {
            pm.expect(problem.errors.map(e => e.field)).to.eql(['answers[0].choices', 'answers[1].question']);
        });`),
    }),
    request('Answers without the required question → 422', {
      method: 'PUT', path: '/api/v1/app/messages/{{inboxMessageId}}/answers', auth: bearer('guardianToken'),
      json: { answers: [{ question: 1, choices: [0] }] },
      test: problem(422, `
        pm.test('names answers', function () {
            pm.expect(problem.errors.map(e => e.field)).to.eql(['answers']);
        });`),
    }),
    request('Answer the survey', {
      method: 'PUT', path: '/api/v1/app/messages/{{inboxMessageId}}/answers', auth: bearer('guardianToken'),
      json: { answers: [{ question: 0, choices: [0] }, { question: 1, choices: [2, 0, 2] }, { question: 2, text: ' 雨具を持たせます ' }] },
      test: ok(200) + FORMATS + `
        pm.test('answered; choices sorted without duplicates, text trimmed', function () {
            pm.expect(body.answered_at).to.match(RFC3339_UTC);
            pm.expect(body.answers).to.eql([
                { question: 0, choices: [0] },
                { question: 1, choices: [0, 2] },
                { question: 2, text: '雨具を持たせます' },
            ]);
        });`,
    }),
    request('Download the attachment through the app', {
      method: 'GET', path: '/api/v1/app/messages/{{inboxMessageId}}/attachments/{{inboxAttachmentId}}', auth: bearer('guardianToken'),
      test: pdfDownload,
    }),
    request('An unknown attachment through the app → 404', {
      method: 'GET', path: `/api/v1/app/messages/{{inboxMessageId}}/attachments/${UNKNOWN_ID}`, auth: bearer('guardianToken'),
      test: problem(404),
    }),
    request("Another guardian's message → 404", {
      method: 'GET', path: '/api/v1/app/messages/{{messageId}}', auth: bearer('guardianToken'),
      test: problem(404),
    }),
    request("Acknowledge another guardian's message → 404", {
      method: 'POST', path: '/api/v1/app/messages/{{messageId}}/ack', auth: bearer('guardianToken'),
      test: problem(404),
    }),
    request("Answer another guardian's message → 404", {
      method: 'PUT', path: '/api/v1/app/messages/{{messageId}}/answers', auth: bearer('guardianToken'),
      json: { answers: [{ question: 0, choices: [0] }] },
      test: problem(404),
    }),
    request("The attachment of another guardian's message → 404", {
      method: 'GET', path: '/api/v1/app/messages/{{messageId}}/attachments/{{attachmentId}}', auth: bearer('guardianToken'),
      test: problem(404),
    }),
    request('A staff token on the inbox → 401', {
      method: 'GET', path: '/api/v1/app/messages',
      test: problem(401),
    }),
    request('The guardian token on the staff messages → 401', {
      method: 'GET', path: '/api/v1/messages', auth: bearer('guardianToken'),
      test: problem(401),
    }),
    request('Staff see it read, acknowledged and answered', {
      method: 'GET', path: '/api/v1/messages/{{inboxMessageId}}/stats',
      test: ok(200) + `
        pm.test('one of one', function () {
            pm.expect(body.recipients).to.eql(1);
            pm.expect(body.read).to.eql(1);
            pm.expect(body.acknowledged).to.eql(1);
            pm.expect(body.answered).to.eql(1);
        });` + deliveryTotals(2, 3),
    }),
    request("Staff see the guardian's answers (recipients)", {
      method: 'GET', path: '/api/v1/messages/{{inboxMessageId}}/recipients',
      test: ok(200) + `
        const r = body.items[0];
        pm.test('山田 花子 with times, answers and five deliveries', function () {
            pm.expect(body.items).to.have.lengthOf(1);
            pm.expect(r.member_id).to.eql(pm.collectionVariables.get('importedMemberId'));
            pm.expect(r.read_at).to.be.a('string');
            pm.expect(r.acknowledged_at).to.eql(pm.collectionVariables.get('acknowledgedAt'));
            pm.expect(r.answered_at).to.be.a('string');
            pm.expect(r.answers).to.eql([{ question: 0, choices: [0] }, { question: 1, choices: [0, 2] }, { question: 2, text: '雨具を持たせます' }]);
            pm.expect(r.deliveries.filter(d => d.channel === 'email').map(d => d.to)).to.have.members(['hanako.yamada@example.jp', 'taro..papa@docomo.ne.jp']);
            pm.expect(r.deliveries.filter(d => d.channel === 'push')).to.have.lengthOf(3);
        });`,
    }),
    request('Nobody left unanswered (status=unanswered)', {
      method: 'GET', path: '/api/v1/messages/{{inboxMessageId}}/recipients', query: [['status', 'unanswered']],
      test: ok(200) + `
        pm.test('no one', function () {
            pm.expect(body.items).to.eql([]);
        });`,
    }),
    request('Survey results (JSON)', {
      method: 'GET', path: '/api/v1/messages/{{inboxMessageId}}/results',
      test: ok(200) + `
        pm.test('one of one answered', function () {
            pm.expect(body.recipients).to.eql(1);
            pm.expect(body.answered).to.eql(1);
        });
        pm.test('counts per option, the text answer with its guardian', function () {
            pm.expect(body.questions[0].options).to.eql([{ option: '参加する', count: 1 }, { option: '参加しない', count: 0 }]);
            pm.expect(body.questions[1].options.map(o => o.count)).to.eql([1, 0, 1]);
            pm.expect(body.questions[2].texts).to.eql([{ member_id: pm.collectionVariables.get('importedMemberId'), name: '山田 花子', text: '雨具を持たせます' }]);
            body.questions.forEach(q => pm.expect(q.answered).to.eql(1));
        });`,
    }),
    request('Survey results as CSV (format=csv)', {
      method: 'GET', path: '/api/v1/messages/{{inboxMessageId}}/results', query: [['format', 'csv']],
      test: resultsCsv + `
        pm.test('one row: the guardian, the times, the answers as option names', function () {
            pm.expect(rows).to.have.lengthOf(1);
            const cells = rows[0].split(',');
            pm.expect(cells.slice(0, 3)).to.eql(['山田 花子', '山田 太郎', 'C1001']);
            cells.slice(3, 6).forEach(t => pm.expect(Date.parse(t)).to.be.a('number').and.not.NaN);
            pm.expect(cells.slice(6)).to.eql(['参加する', '受付;撮影', '雨具を持たせます']);
        });`,
    }),
    request('Resend to those who have not answered: nobody → 202', {
      method: 'POST', path: '/api/v1/messages/{{inboxMessageId}}/resend',
      json: { to: 'unanswered' },
      test: `
        pm.test('status is 202', function () {
            pm.response.to.have.status(202);
        });
        pm.test('no guardian to reach', function () {
            pm.expect(pm.response.json().recipient_count).to.eql(0);
        });`,
    }),
    ...appLogout,
  ],
};

const variables = ['accessToken', 'refreshToken', 'usedRefreshToken', 'oauthAccessToken', 'oauthRefreshToken', 'adminId',
  'senderEmail', 'senderPassword', 'senderId', 'senderAccessToken', 'usersCursor', 'usersSeen',
  'listId', 'list2Id', 'listsCursor', 'listsFirst', 'memberId', 'member2Id', 'membersCursor', 'membersFirst',
  'deviceCount', 'devicePlatform', 'deviceToken', 'deviceId', 'readKey', 'readKeyId',
  'apiKey', 'apiKeyId', 'apiKeyExpiresAt', 'inThreeDays',
  'importedMemberId', 'exportCsv', 'exportKey', 'exportKeyId',
  'invitationCode', 'typedCode', 'guardianToken', 'appDeviceCount', 'appDeviceId', 'otherDeviceId',
  'oldJoinCode', 'joinCode', 'typedJoinCode', 'pendingMemberId', 'pendingToken',
  'inAWeek', 'messageId', 'message2Id', 'copyId', 'copy2Id', 'draftId', 'sendAt', 'attachmentId', 'attachment2Id',
  'forgedToken', 'inboxMessageId', 'inboxAttachmentId', 'acknowledgedAt'];

const collection = {
  info: {
    _postman_id: '5e1f0000-0000-4000-8000-000000000000',
    name: 'renrakumo',
    description: [
      'renrakumo (連絡網) API: health, documentation, sign-in, staff, lists, members (guardians), roster CSV',
      'import/export, the guardian app (invitations, join codes, own profile, addresses, devices, inbox), messages',
      '(drafts, surveys, targets, attachments, sending and scheduling, stats, recipients, results, resending),',
      'personal links and API keys.',
      '',
      'The attachment requests read files from fixtures/ beside this collection: run newman with',
      '`--working-dir postman` (scripts/postman.sh does).',
      '',
      'Runs green, in order, against a fresh database whose first admin was created with',
      '`renrakumo create-admin --org \'Postman School\' --email {{adminEmail}} --password {{adminPassword}}`.',
      '`scripts/postman.sh` does all of that and runs this collection with newman.',
      '',
      'Requests authenticate with `Authorization: Bearer {{accessToken}}` (collection auth) unless they say otherwise',
      '(the guardian app uses `{{guardianToken}}`);',
      'test scripts store tokens and ids in collection variables. Every error answer is checked to be',
      'application/problem+json (RFC 9457).',
    ].join('\n'),
    schema: 'https://schema.getpostman.com/json/collection/v2.1.0/collection.json',
  },
  auth: bearer('accessToken'),
  event: [
    {
      listen: 'test',
      script: {
        id: uid(), type: 'text/javascript',
        exec: dedent(`
          // Every answer of this API: errors are problem+json, nothing is a server error.
          pm.test('[all] no server error', function () {
              pm.expect(pm.response.code).to.be.below(500);
          });
          // The personal-link pages (/r/{token}, its form posts) and the address confirmation
          // (/confirm-email/{token}) answer a phone's browser in HTML.
          const page = /^\\/(r\\/[^/]+(\\/(ack|answers))?|confirm-email\\/[^/]+)$/.test(pm.request.url.getPath());
          if (pm.response.code >= 400 && !page) {
              pm.test('[all] error answer is application/problem+json', function () {
                  pm.expect(pm.response.headers.get('Content-Type')).to.match(/^application\\/problem\\+json/);
              });
          }`),
      },
    },
  ],
  item: [health, docs, signIn, users, lists, members, membership, roster, guardianApp, messages, attachmentsFolder, sending,
    receiptsFolder, inbox, apiKeys, sessions],
  variable: variables.map((key) => ({ key, value: '', type: 'string' })),
};

const environment = {
  id: '5e1f0000-0000-4000-8000-ffffffffffff',
  name: 'renrakumo local',
  values: [
    { key: 'baseUrl', value: 'http://127.0.0.1:8080', type: 'default', enabled: true },
    { key: 'adminEmail', value: 'admin@postman.example.jp', type: 'default', enabled: true },
    { key: 'adminPassword', value: 'postman admin passphrase', type: 'secret', enabled: true },
  ],
  _postman_variable_scope: 'environment',
};

fs.mkdirSync(out, { recursive: true });
fs.writeFileSync(path.join(out, 'renrakumo.postman_collection.json'), JSON.stringify(collection, null, '\t') + '\n');
fs.writeFileSync(path.join(out, 'local.postman_environment.json'), JSON.stringify(environment, null, '\t') + '\n');
console.log('written to', out);
